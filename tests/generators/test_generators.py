"""Generators: initial programs, AST mutation, crossover and CMA-ES constant tuning.

Programs are executed in-process here on real observations: they are our own generated
programs, and running them directly keeps the file fast.
"""

from __future__ import annotations

import ast
import random

import pytest

from scriptrl.envs import resolve_env
from scriptrl.generators import (
    Candidate,
    ConstantTuner,
    GenContext,
    Generator,
    OfflineMutator,
    ParentInfo,
    extract_constants,
    with_constants,
)
from scriptrl.generators import astutil as au
from scriptrl.program import Program, check_source

ENVS = [
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCarContinuous-v0",
    "Pendulum-v1",
    "FrozenLake8x8-v1",
    "Blackjack-v1",
    "LunarLander-v3",
]
GEN = OfflineMutator()


def campaign(ctx: GenContext, seed: int, n_mut: int, n_cross: int):
    """Mutate a growing population, then cross pairs; return everything produced."""
    rng = random.Random(seed)
    init = GEN.initial(ctx, 6, 1.0, rng)
    pop = [ParentInfo(i, c.source, 0.0) for i, c in enumerate(init)]
    mutations, crosses = [], []
    for _ in range(n_mut):
        parent = rng.choice(pop)
        child = GEN.mutate(ctx, parent, rng.uniform(0.0, 1.5), rng)
        mutations.append((parent, child))
        if child is not None:
            pop.append(ParentInfo(len(pop), child.source, 0.0))
    for _ in range(n_cross):
        a, b = rng.sample(pop, 2)
        crosses.append((a, b, GEN.crossover(ctx, a, b, rng.uniform(0.0, 1.5), rng)))
    return init, mutations, crosses


def norm(source: str) -> str:
    return Program(source).normalized_hash


# --------------------------------------------------------------------------- interface


def test_offline_mutator_is_a_generator():
    assert isinstance(GEN, Generator) and GEN.slow is False and GEN.drain_calls() == []
    assert GEN.name == "offline"
    assert ConstantTuner.name == "cma"


def test_context_spaces_are_the_resolved_envs_own(context):
    # The spaces come from the environment the options describe, not from the bare id.
    plain = context("LunarLander-v3")
    ctx = GenContext.for_env(resolve_env("LunarLander-v3", options={"continuous": True}))
    assert plain.action_space.n == 4 and ctx.action_space.shape == (2,)
    assert ctx.history == []


# --------------------------------------------------------------------------- initial programs


@pytest.mark.parametrize("env_id", ENVS)
def test_initial_programs_are_valid_and_act(env_id, context, acts_validly):
    ctx = context(env_id)
    cands = GEN.initial(ctx, 8, 0.8, random.Random(0))
    assert len(cands) == 8
    assert len({norm(c.source) for c in cands}) == 8
    for c in cands:
        assert isinstance(c, Candidate)
        assert (c.generator, c.change, c.parents) == ("offline.init", "init", ())
        assert check_source(c.source) == [], c.source
        assert c.call is not None and c.call.cost_usd == 0.0
        acts_validly(c.source, env_id)
    assert [c.source for c in GEN.initial(ctx, 8, 0.8, random.Random(0))] == [c.source for c in cands]


def test_initial_programs_are_readable(context):
    cart = GEN.initial(context("CartPole-v1"), 2, 0.5, random.Random(0))[0].source
    assert "def policy(obs):" in cart
    assert "pole_angle = obs[2]  # rad, typical -0.2095..0.2095" in cart
    assert "push_left" in cart  # the docstring says what the actions mean
    lake = GEN.initial(context("FrozenLake8x8-v1"), 1, 0.5, random.Random(0))[0].source
    assert "TABLE = [" in lake and "return TABLE[obs]" in lake
    assert len(ast.literal_eval(ast.parse(lake).body[0].value)) == 64  # type: ignore[attr-defined]
    lander = GEN.initial(context("LunarLander-v3"), 1, 0.5, random.Random(0))[0].source
    assert "scores = [score_noop, score_fire_left_engine" in lander
    assert "return scores.index(max(scores))" in lander
    pend = GEN.initial(context("Pendulum-v1"), 1, 0.5, random.Random(0))[0].source
    assert "min(max(torque, -2.0), 2.0)" in pend
    jack = GEN.initial(context("Blackjack-v1"), 2, 0.5, random.Random(0))
    assert any("if " in c.source and "player_sum" in c.source for c in jack) or any(
        "score = " in c.source for c in jack
    )


# --------------------------------------------------------------------------- mutation and crossover


@pytest.mark.parametrize("env_id", ENVS)
def test_mutations_and_crossovers_are_valid_and_new(env_id, acts_validly, context):
    _, mutations, crosses = campaign(context(env_id), seed=1, n_mut=200, n_cross=50)
    assert sum(child is None for _, child in mutations) <= 2
    for parent, child in mutations:
        if child is None:
            continue
        assert check_source(child.source) == [], child.source
        assert norm(child.source) != norm(parent.source), child.note
        assert child.parents == (parent.id,) and child.generator == "offline.mutate"
        assert child.change in ("structural", "scalar") and child.note
        acts_validly(child.source, env_id)
    assert sum(c is None for _, _, c in crosses) <= 5
    for a, b, child in crosses:
        if child is None:
            continue
        assert check_source(child.source) == [], child.source
        assert norm(child.source) not in (norm(a.source), norm(b.source))
        assert child.parents == (a.id, b.id) and child.generator == "offline.crossover"
        acts_validly(child.source, env_id)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "FrozenLake8x8-v1", "Pendulum-v1", "Blackjack-v1"])
def test_mutation_and_crossover_are_deterministic(env_id, context):
    def sources(seed):
        init, muts, crosses = campaign(context(env_id), seed, 40, 10)
        return (
            [c.source for c in init]
            + [m and m.source for _, m in muts]
            + [c and c.source for *_, c in crosses]
        )

    assert sources(7) == sources(7)
    assert sources(7) != sources(8)


def test_temperature_sets_how_structural_mutations_are(context):
    ctx = context("CartPole-v1")
    parent = ParentInfo(1, GEN.initial(ctx, 1, 0.5, random.Random(3))[0].source, 0.0)

    def structural_share(t):
        rng = random.Random(5)
        kinds = [GEN.mutate(ctx, parent, t, rng).change for _ in range(120)]  # type: ignore[union-attr]
        return kinds.count("structural") / len(kinds)

    assert structural_share(0.0) < 0.35 < structural_share(1.5)


def test_scalar_edits_keep_comments_and_layout(context):
    src = (
        "def policy(obs):\n"
        "    # keep me: hand-written reasoning\n"
        "    angle = obs[2]\n"
        "    spin = obs[3]\n"
        "    return 1 if 3.0 * angle + 0.5 * spin > 0.0 else 0  # lean right: push right\n"
    )
    ctx = context("CartPole-v1")
    rng = random.Random(0)
    seen_scalar = 0
    for _ in range(40):
        child = GEN.mutate(ctx, ParentInfo(1, src, 0.0), 0.0, rng)
        assert child is not None
        if child.change == "scalar" and "then" not in child.note:
            seen_scalar += 1
            assert "# keep me: hand-written reasoning" in child.source
            assert "# lean right: push right" in child.source
    assert seen_scalar > 10


def test_handles_class_policies_and_helpers(context):
    src = (
        "import math\n\n\n"
        "def clamp(x, lo, hi):\n    return min(max(x, lo), hi)\n\n\n"
        "class Policy:\n"
        "    def reset(self, seed):\n        self.t = 0\n\n"
        "    def act(self, o):\n"
        "        self.t += 1\n"
        "        torque = -2.5 * o[1] - 0.4 * o[2] + 0.01 * math.sin(self.t)\n"
        "        if o[0] < 0.0:\n            torque = 1.5\n"
        "        return [clamp(torque, -2.0, 2.0)]\n"
    )
    ctx = context("Pendulum-v1")
    rng = random.Random(2)
    for t in (0.1, 0.7, 1.4):
        for _ in range(20):
            child = GEN.mutate(ctx, ParentInfo(1, src, 0.0), t, rng)
            assert child is not None
            assert check_source(child.source) == []
            assert norm(child.source) != norm(src)
            assert "class Policy" in child.source


def test_crossover_of_identical_parents_is_none(context):
    ctx = context("CartPole-v1")
    src = GEN.initial(ctx, 1, 0.5, random.Random(0))[0].source
    assert GEN.crossover(ctx, ParentInfo(1, src, 0), ParentInfo(2, src, 0), 1.0, random.Random(0)) is None


def test_table_crossover_mixes_entries(context):
    ctx = context("FrozenLake8x8-v1")
    a, b = GEN.initial(ctx, 2, 1.0, random.Random(4))
    pa, pb = ParentInfo(1, a.source, 0.0), ParentInfo(2, b.source, 0.0)
    child = GEN.crossover(ctx, pa, pb, 1.0, random.Random(0))
    assert child is not None and child.change == "scalar"
    ta, tb, tc = (ast.literal_eval(ast.parse(s).body[0].value) for s in (a.source, b.source, child.source))  # type: ignore[attr-defined]
    assert all(x in (y, z) for x, y, z in zip(tc, ta, tb, strict=True))
    assert tc not in (ta, tb)


# --------------------------------------------------------------------------- constants


SAMPLE = '''import numpy as np

TABLE = [0, 1, 1, 0]


def policy(obs):
    """Docstring with 3 numbers 4.5 in it."""
    x = obs[0]  # index 0 is not tuned
    v = obs[1] * 2.5 - 0.75 * obs[2]
    total = sum(obs[i] for i in range(3))
    if x > -1.25 and v <= 3:
        return 1
    action = 0 if total < 0.5e-3 else 2
    force = min(max(4.0 * v, -1.0), 1.0) + np.clip(v, -2.0, 2.0) + round(x, 2) ** 2
    return action if force else TABLE[x]
'''


def test_extract_constants_follows_the_documented_rule():
    # tuned: 2.5, 0.75, -1.25, 3 (int in a comparison), 0.0005, 4.0; not: indices, range args,
    # returned actions 1/0/2, table entries, clip bounds, round()'s 2, the exponent 2.
    assert extract_constants(SAMPLE) == [2.5, 0.75, -1.25, 3, 0.0005, 4.0]


def test_constants_round_trip():
    values = extract_constants(SAMPLE)
    assert norm(with_constants(SAMPLE, values)) == norm(SAMPLE)
    new = with_constants(SAMPLE, [2.123456, -0.5, 2.0, 4.6, -0.001, 7])
    assert check_source(new) == []
    got = extract_constants(new)
    assert got == [2.123, 0.5, 2.0, 5, -0.001, 7.0]  # the sign of -0.5 moved to the operator
    assert type(got[3]) is int and type(got[5]) is float
    assert "obs[1] * 2.123 + 0.5 * obs[2]" in new  # no "- -0.5"
    assert "x > 2.0" in new and "v <= 5" in new and "total < -0.001" in new
    assert "# index 0 is not tuned" in new  # comments survive
    with pytest.raises(ValueError):
        with_constants(SAMPLE, [1.0])


def test_with_constants_is_semantically_exact():
    src = "def policy(obs):\n    return 1 if 0.5 * obs[0] - 0.25 * obs[1] + 2 > 0.0 else 0\n"
    values = [-0.3, -1.5, -4, 0.1]
    new = with_constants(src, values)
    f_new: dict = {}
    exec(new, f_new)
    for obs in ([1.0, 2.0], [-3.0, 0.5], [0.2, 9.0]):
        expected = 1 if -0.3 * obs[0] - (-1.5) * obs[1] + (-4) > 0.1 else 0
        assert f_new["policy"](obs) == expected
    assert extract_constants(new) == [-0.3, 1.5, 4, 0.1]


def test_numeric_sites_skip_fstrings_and_bools():
    tree = ast.parse(
        "def policy(obs):\n    flag = True\n    s = f'{obs[0]:.3f}'\n    return 1 if flag else 0\n"
    )
    assert [s.role for s in au.numeric_sites(tree)] == ["action", "action"]


def test_int_weights_combined_arithmetically_are_tuned_as_floats_but_tables_are_not():
    """A model's ``weights = [1, 1, 1, 1]`` fed to ``np.dot`` are numbers to tune; a table indexed
    by the state (or whose entries are returned) stays a table of actions."""
    dot = (
        "import numpy as np\n\ndef policy(obs):\n    weights = [1, 1, 1, 1]  # first guess\n"
        "    return 1 if np.dot(weights, obs) >= 0 else 0\n"
    )
    assert extract_constants(dot) == [1, 1, 1, 1, 0]
    tuned = with_constants(dot, [0.5, 1, -2.25, 3, 0.1])
    assert "weights = [0.5, 1.0, -2.25, 3.0]  # first guess" in tuned and check_source(tuned) == []
    indexed = "W = [2, 3]\n\ndef policy(obs):\n    return 1 if W[0] * obs[0] + W[1] * obs[1] > 0 else 0\n"
    assert extract_constants(indexed) == [2, 3, 0]
    table = "TABLE = [0, 1, 2, 3]\n\ndef policy(obs):\n    return TABLE[obs]\n"
    picked = "ACTIONS = [0, 1]\n\ndef policy(obs):\n    a = ACTIONS[obs % 2]\n    return a\n"
    twice = (
        "W = [1, 1]\nW = [0, 1]\n\ndef policy(obs):\n    return int(sum(w * o for w, o in zip(W, obs)) > 0)\n"
    )
    assert extract_constants(table) == extract_constants(picked) == []
    assert extract_constants(twice) == [0]  # bound twice: left alone
