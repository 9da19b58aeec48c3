"""The full-state feedback family (``generators/offline/feedback.py``) reads every reading.

Why it matters: the measured failure of the sparse linear start on the landers is a reading the
law never sees, which CMA-ES on its constants cannot add back; a feedback law must therefore
give every action dimension a weight on every reading, stay a valid program on real
observations, and start neutral (all zeros) when asked.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from scriptrl.generators import OfflineMutator
from scriptrl.generators.layout import layout_for
from scriptrl.generators.offline import EnvView
from scriptrl.generators.offline.feedback import FeedbackShape, feedback_box, feedback_fits, flag_positions
from scriptrl.generators.tuning import ConstantTuner, extract_constants
from scriptrl.program import check_source

GEN = OfflineMutator()
LINEAR = FeedbackShape(absolute=False, target=False, switch=False)
SHAPES = [LINEAR, FeedbackShape(), FeedbackShape(absolute=True, target=False, switch=True)]


@pytest.mark.parametrize("env_id", ["LunarLanderContinuous-v3", "Pendulum-v1"])
@pytest.mark.parametrize("shape", SHAPES)
def test_every_law_reads_every_reading_and_acts_validly(env_id, shape, context, acts_validly):
    env = EnvView(layout_for(context(env_id)))
    lay = env.layout
    assert feedback_fits(lay)
    for seed in range(2):
        body, _ = feedback_box(env, random.Random(seed), 0.5, shape)
        src = GEN._finish(env, body)
        assert check_source(src) == [], src
        acts_validly(src, env_id)
        law_lines = [
            ln for ln in body.splitlines() if any(ln.strip().startswith(f"{v} =") for v in lay.action_vars)
        ]
        assert law_lines, body
        flags = set(flag_positions(lay)) if shape.switch else set()
        for line in law_lines:
            for i, c in enumerate(lay.components):
                if i not in flags:
                    assert f"* {c.var}" in line, (c.var, line)


def test_zero_start_is_all_zero_and_the_flag_law_needs_a_flag(context):
    lander = EnvView(layout_for(context("LunarLanderContinuous-v3")))
    body, note = feedback_box(lander, random.Random(0), 0.5, LINEAR, zero=True)
    src = GEN._finish(lander, body)
    assert all(v == 0.0 for v in extract_constants(src)[: 2 * len(lander.layout.components)])
    assert flag_positions(lander.layout), "the lander description marks its leg contacts as flags"
    switched, note = feedback_box(lander, random.Random(0), 0.5, FeedbackShape())
    assert "if " in switched and "contact law" in note
    pendulum = EnvView(layout_for(context("Pendulum-v1")))
    assert not flag_positions(pendulum.layout)
    body, note = feedback_box(pendulum, random.Random(0), 0.5, FeedbackShape())
    assert "if " not in body and "contact law" not in note


def test_discrete_actions_are_not_offered_a_feedback_law(context):
    assert not feedback_fits(layout_for(context("CartPole-v1")))


def test_the_start_list_offers_one_zero_feedback_law_where_it_fits(context):
    """Wired into the offline starts: a small named Box observation gets the dense law (once, as
    the second start, so even two initial programs include it); a larger observation and
    discrete actions do not."""
    ctx = context("LunarLanderContinuous-v3")
    lay = layout_for(ctx)
    assert feedback_fits(lay)
    kinds = [kind for kind, _ in GEN._templates(EnvView(lay))]
    assert kinds[1] == "feedback" and kinds.count("feedback") == 1
    starts = GEN.initial(ctx, 2, 0.5, random.Random(0))
    dense = [c for c in starts if c.note.startswith("full-state feedback law")]
    assert len(dense) == 1
    values = extract_constants(dense[0].source)
    assert len(values) == len(lay.action_vars) * (len(lay.components) + 1)
    assert all(v == 0.0 for v in values)
    for env_id in ["BipedalWalker-v3", "CartPole-v1", "LunarLander-v3"]:
        other = layout_for(context(env_id))
        assert not feedback_fits(other), env_id
        assert "feedback" not in [k for k, _ in GEN._templates(EnvView(other))], env_id
    walker = layout_for(context("BipedalWalker-v3"))
    for n, offered in [(12, True), (13, False)]:  # one weight per reading per dimension: at most 12
        cut = dataclasses.replace(walker, components=walker.components[:n], rate_pairs=())
        assert ("feedback" in [k for k, _ in GEN._templates(EnvView(cut))]) is offered, n


def test_a_zero_weight_on_a_reading_tunes_with_a_whole_unit_step(context):
    """The campaign's steps are ``max(|v|, floor)``: a zero has no size of its own, so the zero
    feedback law would start CMA-ES with half-size steps unless its weights' floors are whole
    (RESULTS.md, stop 22: from zero with unit steps the lander law reached holdout 226).
    Non-zero weights, zero thresholds and zero biases keep the half floor."""
    ctx = context("LunarLanderContinuous-v3")
    lay = layout_for(ctx)
    vx = lay.components[2]
    src = (
        "def policy(obs):\n"
        f"    {vx.var} = obs[2]\n"
        f"    a = 0.0 * {vx.var} + 0.3 * {vx.var} + 0.0\n"
        f"    if {vx.var} > 0.0:\n"
        "        a = a + 0.5\n"
        "    return [min(max(a, -1.0), 1.0), min(max(-a, -1.0), 1.0)]\n"
    )
    assert extract_constants(src) == [0.0, 0.3, 0.0, 0.0, 0.5]
    zero_w, weight, bias, threshold, step = ConstantTuner().scales(ctx, src)
    assert zero_w == pytest.approx(1.0 / vx.scale)
    assert weight == pytest.approx(0.5 / vx.scale)
    assert threshold == pytest.approx(0.5 * vx.scale)
    assert bias == step == pytest.approx(0.5)
    body, _ = feedback_box(EnvView(lay), random.Random(0), 0.5, LINEAR, zero=True)
    law = GEN._finish(EnvView(lay), body)
    scales = ConstantTuner().scales(ctx, law)
    per_dim = len(lay.components) + 1
    for k, c in enumerate(lay.components):
        assert scales[k] == pytest.approx(1.0 / c.scale), c.var
    assert scales[per_dim - 1] == pytest.approx(0.5)  # the bias
