"""The stall rule: hopeless screening episodes end early, as their own termination reason, never on
holdout or audit."""

from __future__ import annotations

from scriptrl.evaluate import EvalConfig, evaluate
from scriptrl.evaluate.stall import StallRule
from scriptrl.seeds import SeedSplits

# CliffWalking-v1 starts at the bottom-left; always "up" reaches the top row in 3 steps and
# then stays on one cell, losing 1 per step, until scriptrl's step cap of 1000.
STUCK = "def policy(obs):\n    return 0\n"


def test_an_episode_whose_observation_stops_moving_ends_as_stalled():
    r = evaluate(STUCK, "CliffWalking-v1", [0, 1], EvalConfig(stall=StallRule(steps=50)))
    assert r.lengths == [53, 53] and r.returns == [-53.0, -53.0]
    assert all(ep.end == "stalled" and "observation moved less than" in ep.reason for ep in r.episodes)
    assert r.termination_counts == {"stalled": 2} and not r.failures


def test_an_episode_whose_return_stops_improving_ends_as_stalled():
    rule = StallRule(steps=20, obs_epsilon=None, min_improvement=0.0)
    r = evaluate(STUCK, "CliffWalking-v1", [0], EvalConfig(stall=rule))
    assert (
        r.lengths == [21]
        and r.episodes[0].end == "stalled"
        and "return did not improve" in r.episodes[0].reason
    )


def test_a_moving_episode_is_not_cut():
    r = evaluate(
        "def policy(obs):\n    return 1 if obs[2] + 0.5 * obs[3] > 0 else 0\n",
        "CartPole-v1",
        [0],
        EvalConfig(stall=StallRule(steps=5)),
    )
    assert r.episodes[0].end in ("terminated", "truncated") and r.lengths[0] > 5


def test_the_rule_is_off_by_default_and_never_cuts_holdout_or_audit():
    assert EvalConfig().stall is None
    splits = SeedSplits()
    stall = EvalConfig(stall=StallRule(steps=50))
    for split in ("holdout", "audit"):
        named = evaluate(STUCK, "CliffWalking-v1", splits.seeds(split, 1), stall, split=split)
        unnamed = evaluate(STUCK, "CliffWalking-v1", splits.seeds(split, 1), stall)
        assert named.lengths == unnamed.lengths == [1000] and named.episodes[0].end == "truncated"
    assert evaluate(STUCK, "CliffWalking-v1", [0], stall, split="holdout").lengths == [1000]
