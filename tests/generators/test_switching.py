"""Switching controllers (hold near the target, pump elsewhere) and their two operators.

Generated programs are our own and run in-process (conftest's ``acts_validly``); the claim the
family exists for, a swing-up a linear map cannot do, is checked on real sandboxed episodes.
"""

from __future__ import annotations

import ast
import random

import pytest

from scriptrl.evaluate import evaluate
from scriptrl.generators import OfflineMutator, ParentInfo
from scriptrl.generators import astutil as au
from scriptrl.generators.layout import layout_for
from scriptrl.generators.offline import EnvView
from scriptrl.generators.offline.family_ops import op_flip_law, op_scale_law
from scriptrl.generators.offline.switching import (
    SWITCHING_VARIANTS,
    find_switch,
    lead_constant,
    switching_fits,
)
from scriptrl.generators.offline.templates import linear_box
from scriptrl.generators.offline.tree_edit import flatten
from scriptrl.program import check_source
from scriptrl.seeds import SeedSplits

GEN = OfflineMutator()
FITS = ["Pendulum-v1", "MountainCarContinuous-v0"]


def program(env: EnvView, build, seed: int) -> str:
    return GEN._finish(env, build(env, random.Random(seed), 1.0)[0])


def policy_of(source: str):
    ns: dict = {}
    exec(compile(source, "policy.py", "exec"), ns)
    return ns["policy"]


@pytest.mark.parametrize("env_id", FITS)
def test_each_variant_is_a_valid_switch_over_the_named_rate_pairs(env_id, context, acts_validly):
    env = EnvView(layout_for(context(env_id)))
    lay = env.layout
    for build in SWITCHING_VARIANTS:
        for seed in range(3):
            src = program(env, build, seed)
            assert check_source(src) == [] and au.problem(src) is None, src
            acts_validly(src, env_id)
            switch = find_switch(env, env.analyze(src))
            assert switch is not None, src
            hold = ast.unparse(ast.Module(switch.body, []))
            pump = ast.unparse(ast.Module(switch.orelse, []))
            for x, v in lay.rate_pairs:  # hold reads each position and rate; pump reads the rate
                assert lay.components[x].var in hold and lay.components[v].var in hold
                assert lay.components[v].var in pump and "abs(" in pump


def test_switching_is_offered_only_where_rate_pairs_do_not_outnumber_actuators(context):
    fits = {e: switching_fits(layout_for(context(e))) for e in FITS}
    assert all(fits.values()), fits
    for env_id in ["LunarLanderContinuous-v3", "BipedalWalker-v3", "CartPole-v1", "Acrobot-v1"]:
        lay = layout_for(context(env_id))
        assert not switching_fits(lay), env_id
        kinds = [kind for kind, _ in GEN._templates(EnvView(lay))]
        assert "switching" not in kinds, env_id
    kinds = [kind for kind, _ in GEN._templates(EnvView(layout_for(context("Pendulum-v1"))))]
    assert len(kinds) == 16 and kinds.count("switching") == 4 and kinds.count("linear") == 6
    starts = GEN.initial(context("Pendulum-v1"), 16, 1.0, random.Random(0))
    assert sum("switching controller" in c.note for c in starts) == 4


def test_the_law_operators_leave_other_programs_and_environments_alone(context):
    rng = random.Random(3)
    ctx = context("LunarLanderContinuous-v3")
    env = EnvView(layout_for(ctx))
    for seed in range(4):
        parent = ParentInfo(1, program(env, linear_box, seed), 0.0)
        for _ in range(10):
            child = GEN.mutate(ctx, parent, 1.0, rng)
            assert child is None or " law" not in child.note, child.note
    pend = EnvView(layout_for(context("Pendulum-v1")))
    linear = pend.analyze(program(pend, linear_box, 0))
    assert op_flip_law(pend, linear, 1.0, rng) is None and op_scale_law(pend, linear, 1.0, rng) is None


def _branch_obs(env: EnvView, src: str, holds: bool):
    """A Pendulum observation on the given side of the program's switch, moving and tilted."""
    pol_src = ast.unparse(find_switch(env, env.analyze(src)).test)  # type: ignore[union-attr]
    for cos_t in [x / 10 for x in range(-9, 10)]:
        obs = [cos_t, (1 - cos_t * cos_t) ** 0.5, 1.5]
        if eval(pol_src, {"cos_theta": obs[0], "sin_theta": obs[1], "theta_dot": obs[2]}) == holds:
            return obs
    raise AssertionError(f"no observation on that side of {pol_src}")


def test_flip_law_negates_one_law_or_moves_the_switch_side(context):
    env = EnvView(layout_for(context("Pendulum-v1")))
    src = program(env, SWITCHING_VARIANTS[0], 5)
    parent = policy_of(src)
    kinds = set()
    for seed in range(30):
        child_src, note = op_flip_law(env, env.analyze(src), 1.0, random.Random(seed))
        assert au.problem(child_src) is None
        child = policy_of(child_src)
        if "side of the threshold" in note:
            kinds.add("side")
            assert "<" in ast.unparse(find_switch(env, env.analyze(child_src)).test)  # type: ignore[union-attr]
            continue
        branch = "hold" if "hold law" in note else "pump"
        kinds.add(branch)
        obs = _branch_obs(env, src, branch == "hold")
        other = _branch_obs(env, src, branch != "hold")
        a, b = parent(obs)[0], child(obs)[0]
        assert b == pytest.approx(-a) and a != 0, (note, a, b)  # that law now pushes the other way
        assert child(other)[0] == pytest.approx(parent(other)[0])  # the other law is unchanged
    assert kinds == {"side", "hold", "pump"}


def test_scale_law_multiplies_gains_but_not_targets_caps_or_thresholds(context):
    env = EnvView(layout_for(context("Pendulum-v1")))
    src = program(env, SWITCHING_VARIANTS[0], 2)
    an = env.analyze(src)
    switch = find_switch(env, an)
    assert switch is not None
    leads = set()
    for stmt in switch.body + switch.orelse:
        terms: list = []
        flatten(stmt.value, 1, terms)  # type: ignore[attr-defined]
        leads |= {id(lead_constant(e)) for _, e in terms}
    lead_sites = {k for k, site in enumerate(an.sites) if id(site.node) in leads}
    assert len(lead_sites) == 3  # kp and kd of the hold law, k of the pump
    before = [site.value for site in an.sites]
    for seed in range(10):
        child_src, note = op_scale_law(env, env.analyze(src), 1.0, random.Random(seed))
        after = [site.value for site in env.analyze(child_src).sites]
        assert len(after) == len(before)
        changed = {k for k, (a, b) in enumerate(zip(before, after, strict=True)) if a != b}
        assert changed and changed <= lead_sites, note  # targets, caps, threshold, bounds kept
        ratios = [after[k] / before[k] for k in changed]
        assert max(ratios) == pytest.approx(min(ratios), rel=0.02), note  # one factor


def test_a_switching_start_swings_the_pendulum_up_where_linear_starts_do_not(context):
    """Real sandboxed episodes: the best of a few switching starts beats the best linear start by a
    wide margin (a linear map of cos, sin and rate cannot swing up, then hold)."""
    env = EnvView(layout_for(context("Pendulum-v1")))
    seeds = SeedSplits().train(0, 5)

    def best(builds) -> float:
        return max(evaluate(program(env, b, s), "Pendulum-v1", seeds).mean for b in builds for s in range(3))

    switching, linear = best(SWITCHING_VARIANTS[:2]), best([linear_box, linear_box])
    assert switching > linear + 200, (switching, linear)
