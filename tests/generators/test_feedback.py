"""The full-state feedback family (``generators/offline/feedback.py``) reads every reading.

Why it matters: the measured failure of the sparse linear start on the landers is a reading the
law never sees, which CMA-ES on its constants cannot add back; a feedback law must therefore
give every action dimension a weight on every reading, stay a valid program on real
observations, and start neutral (all zeros) when asked.
"""

from __future__ import annotations

import random

import pytest

from scriptrl.generators import OfflineMutator
from scriptrl.generators.layout import layout_for
from scriptrl.generators.offline import EnvView
from scriptrl.generators.offline.feedback import FeedbackShape, feedback_box, feedback_fits, flag_positions
from scriptrl.generators.tuning import extract_constants
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
