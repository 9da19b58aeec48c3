"""The evaluator on real environments through the real sandbox."""

import os
from pathlib import Path

import pytest

from scriptrl.envs import resolve_env
from scriptrl.evaluate import EvalConfig, SeedSplits, confidence_interval, evaluate

from checkout import EXAMPLES

PD = (EXAMPLES / "cartpole_pd.py").read_text()
CARTPOLE = resolve_env("CartPole-v1")


def test_pd_controller_scores_500_on_holdout():
    r = evaluate(PD, CARTPOLE, SeedSplits().seeds("holdout"), split="holdout")
    assert r.mean == 500.0 and len(r.returns) == 50 and r.failures == []
    assert r.env_steps == 25_000 and r.termination_counts == {"truncated": 50}
    assert r.env_id == "CartPole-v1" and r.gymnasium_version
    assert all(
        v.startswith("on") for k, v in r.isolation.items() if k in ("process", "environment", "rlimits")
    )


def test_same_program_same_seeds_same_result():
    src = "import random\ndef policy(obs):\n    return 1 if obs[2] + 0.01 * random.random() > 0 else 0\n"
    a = evaluate(src, CARTPOLE, list(range(8)))
    b = evaluate(src, CARTPOLE, list(range(8)))
    assert a.returns == b.returns and a.lengths == b.lengths


def test_sandbox_and_in_process_agree_for_trusted_code():
    seeds = list(range(6))
    a = evaluate(PD, CARTPOLE, seeds)
    b = evaluate(PD, CARTPOLE, seeds, EvalConfig(unsafe_in_process=True))
    assert a.returns == b.returns and b.isolation["process"].startswith("off")


def test_digest_records_how_episodes_end():
    r = evaluate("def policy(obs):\n    return 0\n", CARTPOLE, [0, 1, 2], EvalConfig(digest_tail=4))
    for ep in r.episodes:
        assert ep.end == "terminated"
        assert len(ep.tail) == 4 and len(ep.tail[-1]["obs"]) == 4
        assert ep.action_summary["histogram"] == [ep.length, 0]
    assert r.mean == pytest.approx(sum(r.returns) / 3)


def test_invalid_action_ends_episode_with_reason():
    r = evaluate("def policy(obs):\n    return True\n", CARTPOLE, [0, 1])
    assert [f["reason"] for f in r.failures] == ["invalid action: got a bool, expected an int in 0..1"] * 2
    # A failed episode scores min(earned before failing, what doing nothing scores on its seed).
    always0 = evaluate("def policy(obs):\n    return 0\n", CARTPOLE, [0, 1])
    assert r.returns == [0.0, 0.0] and [ep.null_return for ep in r.episodes] == always0.returns


def test_failing_never_beats_doing_nothing_on_pendulum():
    pend = resolve_env("Pendulum-v1")
    nan = evaluate("def policy(obs):\n    return [float('nan')]\n", pend, [0, 1, 2])
    zero = evaluate("def policy(obs):\n    return [0.0]\n", pend, [0, 1, 2])
    rejected = evaluate("import os\ndef policy(obs):\n    return [0.0]\n", pend, [0, 1, 2])
    assert len(nan.failures) == 3 and "finite" in nan.failures[0]["reason"]
    assert nan.returns == zero.returns == rejected.returns and nan.mean < -100


def test_exception_reason_names_the_line():
    src = "def policy(obs):\n    x = 0\n    return 1 // x\n"
    r = evaluate(src, CARTPOLE, [0])
    reason = r.failures[0]["reason"]
    assert reason.startswith("exception: ZeroDivisionError") and "line 3" in reason


def test_late_exception_keeps_earned_reward_and_marks_failure():
    src = (
        "class Policy:\n    def reset(self, seed):\n        self.t = 0\n    def act(self, obs):\n"
        "        self.t += 1\n        if self.t > 5:\n            raise ValueError('late')\n"
        "        return 1 if obs[2] > 0 else 0\n"
    )
    r = evaluate(src, CARTPOLE, [0, 1])
    assert all(ep.end == "failure" and ep.length == 5 and ep.null_return > 5 for ep in r.episodes)
    assert r.returns == [5.0, 5.0]  # earned before failing, below what doing nothing earns
    assert "ValueError: late" in r.failures[0]["reason"]


def test_hung_worker_is_killed_and_evaluation_carries_on():
    src = (
        "class Policy:\n    def reset(self, seed):\n        self.seed = seed\n"
        "    def act(self, obs):\n        while self.seed == 1:\n            pass\n"
        "        return 1 if obs[2] > 0 else 0\n"
    )
    cfg = EvalConfig(call_timeout=0.5, max_concurrency=1)
    r = evaluate(src, CARTPOLE, [0, 1, 2], cfg)
    ends = [ep.end for ep in r.episodes]
    assert ends[1] == "failure" and "timeout" in r.episodes[1].reason
    assert ends[0] != "failure" and ends[2] != "failure"


def test_load_error_is_reported():
    r = evaluate("x = 1 / 0\ndef policy(obs):\n    return 0\n", CARTPOLE, [0])
    assert "ZeroDivisionError" in r.failures[0]["reason"] and "loading" in r.failures[0]["reason"]


def test_continuous_actions_need_exact_shape():
    pend = resolve_env("Pendulum-v1")
    ok = evaluate("def policy(obs):\n    return [max(-2.0, min(2.0, -3.0 * obs[2]))]\n", pend, [0])
    assert ok.failures == [] and ok.lengths == [200]
    bad = evaluate("def policy(obs):\n    return 0.5\n", pend, [0])
    assert "shape (1,)" in bad.failures[0]["reason"]


def test_discrete_and_tuple_observations():
    fl = evaluate(
        "def policy(obs):\n    return 2 if obs % 8 < 7 else 1\n", resolve_env("FrozenLake8x8-v1"), [0, 1]
    )
    assert fl.failures == [] and all(isinstance(t["obs"], int) for t in fl.episodes[0].tail)
    bj = evaluate(
        "def policy(obs):\n    total, dealer, ace = obs\n    return 1 if total < 17 else 0\n",
        resolve_env("Blackjack-v1"),
        list(range(20)),
    )
    assert bj.failures == [] and -1.0 <= bj.mean <= 1.0


def test_retired_id_runs_its_successor_and_says_so():
    r = evaluate("def policy(obs):\n    return 0\n", resolve_env("LunarLander-v2"), [0])
    assert r.env_id == "LunarLander-v3" and r.notice and "LunarLander-v3" in r.notice


def test_worker_never_sees_secrets(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-123")
    src = "import os\ndef policy(obs):\n    return 1 if 'OPENAI_API_KEY' in os.environ else 0\n"
    r = evaluate(src, CARTPOLE, [0], EvalConfig(static_checks=False, import_guard=False))
    assert r.episodes[0].action_summary["histogram"][1] == 0
    assert "sk-canary" not in str(r.to_dict())


def test_confidence_interval_widens_with_fewer_episodes():
    lo5, hi5 = confidence_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    lo50, hi50 = confidence_interval([1.0, 2.0, 3.0, 4.0, 5.0] * 10)
    assert lo5 < lo50 < 3.0 < hi50 < hi5
    assert confidence_interval([7.0]) == (7.0, 7.0)


def test_splits_are_disjoint_and_configurable():
    s = SeedSplits()
    dev, hold, audit = (set(s.seeds(k)) for k in ("dev", "holdout", "audit"))
    assert len(dev) == 20 and len(hold) == 50 and len(audit) == 50
    assert not (dev & hold or dev & audit or hold & audit)
    assert SeedSplits(dev=(5, 10)).seeds("dev") == [5, 6, 7, 8, 9]


def test_no_worker_processes_left_behind():
    from scriptrl.sandbox.forkserver import stop_fork_server, zygote_pid

    stop_fork_server()
    before = _children(os.getpid())
    for config in (EvalConfig(), EvalConfig(fork_server=False)):
        evaluate(PD, CARTPOLE, [0, 1], config)
    zygote = zygote_pid()  # this process's fork server stays, by design; its workers must not
    assert zygote is not None and _children(os.getpid()) - {zygote} <= before and not _children(zygote)


def _children(parent: int) -> set[int]:
    """Living children of ``parent`` (a zombie its parent has not reaped yet runs nothing)."""
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[1] == str(parent) and fields[0] != "Z":
                    out.add(int(d.name))
            except (OSError, IndexError):
                pass
    return out


def test_env_without_time_limit_is_capped():
    r = evaluate(
        "def policy(obs):\n    return 0\n", resolve_env("CliffWalking-v1"), [0], EvalConfig(step_cap=50)
    )
    assert r.lengths == [50] and r.episodes[0].end == "truncated" and "step cap" in r.episodes[0].reason


def test_combined_parts_equal_one_evaluation_of_all_seeds():
    from scriptrl.evaluate import combine_results

    src = "def policy(obs):\n    return 1 if obs[2] + 0.1 * obs[3] > 0 else 0\n"
    whole = evaluate(src, CARTPOLE, list(range(6)))
    parts = combine_results([evaluate(src, CARTPOLE, [0, 1]), evaluate(src, CARTPOLE, [2, 3, 4, 5])])
    assert parts.returns == whole.returns and parts.mean == whole.mean and parts.ci95 == whole.ci95
    assert parts.env_steps == whole.env_steps and parts.seeds == list(range(6))
