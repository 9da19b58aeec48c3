"""The dense linear form (``generators/offline/dense.py``): every reading in every linear score.

Why it matters: CMA-ES on a sparse score cannot add the reading it lacks, so the dense lane of
tuning works on this form; it must weigh every reading in every score, act exactly as the
program it came from (its campaign starts where that program stands), stay a valid program,
and map sparse programs that differ only in the readings they use to one shape.
"""

from __future__ import annotations

import ast
import random

import numpy as np
import pytest

from scriptrl.generators import OfflineMutator
from scriptrl.generators.layout import layout_for
from scriptrl.generators.offline import EnvView
from scriptrl.generators.offline.dense import MAX_DENSE_CONSTANTS, dense_form, dense_key, densify
from scriptrl.generators.offline.templates import linear_box, linear_discrete, rules_discrete
from scriptrl.generators.tuning import extract_constants
from scriptrl.program import check_source

GEN = OfflineMutator()


def _sparse(env: EnvView, build, seed: int) -> str:
    """A template's program whose scores leave at least one reading out."""
    for s in range(seed, seed + 200):
        body, _ = build(env, random.Random(s), 1.0)
        src = GEN._finish(env, body)
        if densify(env, src) not in (None, src):
            return src
    raise AssertionError("no sparse program in 200 draws")


def _weighed(src: str, var: str) -> list[str]:
    """The readings ``var = ...`` weighs with a number, sorted (each as often as it is weighed)."""
    node = next(
        n
        for n in ast.walk(ast.parse(src))
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) and n.targets[0].id == var
    )
    return sorted(
        t.right.id
        for t in ast.walk(node.value)
        if isinstance(t, ast.BinOp) and isinstance(t.op, ast.Mult) and isinstance(t.right, ast.Name)
    )


def _act(src: str):
    ns: dict = {}
    exec(compile(src, "policy.py", "exec"), ns)
    return ns["policy"]


@pytest.mark.parametrize("env_id", ["LunarLander-v3", "Acrobot-v1"])
def test_every_score_weighs_every_reading_and_acts_as_the_program_did(env_id, context, acts_validly):
    env = EnvView(layout_for(context(env_id)))
    lay = env.layout
    readings = sorted(c.var for c in lay.components)
    for seed in (0, 50):
        src = _sparse(env, linear_discrete, seed)
        dense = dense_form(context(env_id), src)
        assert dense is not None and check_source(dense) == [], dense
        acts_validly(dense, env_id)
        for var in lay.action_vars:
            assert _weighed(dense, var) == readings, (var, dense)  # every reading, once
        n = len(readings)
        assert len(extract_constants(dense)) == len(lay.action_vars) * (n + 1)  # weights and a bias
        before, after = _act(src), _act(dense)
        rng = np.random.default_rng(seed)
        for _ in range(300):
            obs = rng.normal(size=n) * 2
            assert before(obs) == after(obs)


def test_a_threshold_rule_and_a_box_map_get_every_reading(context):
    cart = EnvView(layout_for(context("CartPole-v1")))
    src = _sparse(cart, linear_discrete, 0)  # two actions: score = w . x; return 1 if score > c
    dense = densify(cart, src)
    assert dense is not None and _weighed(dense, "score") == sorted(c.var for c in cart.layout.components)
    lander = EnvView(layout_for(context("LunarLanderContinuous-v3")))
    src = _sparse(lander, linear_box, 0)
    dense = densify(lander, src)
    assert dense is not None
    for var in lander.layout.action_vars:
        assert _weighed(dense, var) == sorted(c.var for c in lander.layout.components)


def test_no_linear_score_no_dense_form_and_a_dense_program_is_its_own(context):
    env = EnvView(layout_for(context("LunarLander-v3")))
    body, _ = rules_discrete(env, random.Random(0), 0.5)
    assert densify(env, GEN._finish(env, body)) is None  # threshold rules weigh no reading
    dense = densify(env, _sparse(env, linear_discrete, 0))
    assert dense is not None and densify(env, dense) == dense
    frozen = EnvView(layout_for(context("FrozenLake-v1")))  # one discrete state: no readings to weigh
    body, _ = linear_discrete(frozen, random.Random(0), 0.5)
    assert densify(frozen, GEN._finish(frozen, body)) is None


def test_sparse_programs_using_other_readings_share_one_dense_shape(context):
    env = EnvView(layout_for(context("LunarLander-v3")))
    a, b = _sparse(env, linear_discrete, 0), _sparse(env, linear_discrete, 100)
    assert a != b
    da, db = densify(env, a), densify(env, b)
    assert da is not None and db is not None and da != db
    assert dense_key(da) == dense_key(db)
    extra = da.replace("return scores", "if x > 0.5:\n        return 0\n    return scores")
    assert dense_key(extra) != dense_key(da)  # a condition more is another shape


def test_a_form_with_too_many_constants_to_tune_all_is_refused(context):
    env = EnvView(layout_for(context("LunarLander-v3")))
    src = _sparse(env, linear_discrete, 0)
    k = MAX_DENSE_CONSTANTS // len(env.layout.components)  # so many more scores: too many weights
    extra = "".join(f"    s{i} = 0.5 * x + 0.25 * y + 1.0\n" for i in range(k))
    used = " + ".join(f"s{i}" for i in range(k))
    first = env.layout.action_vars[0]
    bloated = src.replace("    scores = [", f"{extra}    {first} += {used}\n    scores = [")
    assert check_source(bloated) == [], bloated
    assert densify(env, bloated) is None
