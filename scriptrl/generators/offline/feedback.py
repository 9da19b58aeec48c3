"""Full-state feedback laws for Box actions: every action dimension a clipped linear map of
every reading, optionally with ``abs`` of the positions, one clipped intermediate ``target``
and a second law while a flag reading is set.

Why this family: a controller that tracks a moving target is linear in the readings once the
target is written out. Steering towards a pad, for example, is ``angle_target = a*x + b*vx``
and ``push = kp*(angle_target - angle) - kd*rate``: linear in (x, vx, angle, rate). The older
``linear_box`` start reads a random subset of the readings, so a missing position or rate
cannot be added back by CMA-ES (which only moves constants); this family reads all of them, so
constant search alone can reach any such law. The optional parts cover what a pure linear
law cannot:

* ``abs`` of each position the description pairs with a rate (``rate_of``): a law symmetric
  in a position (hover higher the farther from the centre);
* one shared ``target = min(max(w . obs + b, -1.0), 1.0)`` used by every action dimension:
  a saturated set-point (do not tilt more than so far, however far away);
* a contact law: while any reading the description marks as a flag (``unit = "flag"``) is
  set, each dimension uses its own linear map (a lander on its legs wants other thrust than
  one in flight).

Every weight is a plain literal, so CMA-ES tunes them and the generic operators apply; the
clip bounds are the action bounds and the target's fixed [-1, 1] (its scale sits in the
weights that read it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from scriptrl.generators.layout import EnvLayout
from scriptrl.generators.offline.env_view import EnvView, sig

#: The unit a description gives a 0/1 reading (a leg touching the ground, a lane being free).
FLAG_UNIT = "flag"


@dataclass(frozen=True)
class FeedbackShape:
    """Which optional parts a feedback law has (each one a measured need, see module doc)."""

    absolute: bool = True  # + w * abs(position) for each position a rate pair names
    target: bool = True  # one shared clipped linear intermediate used by every dimension
    switch: bool = True  # a second law while a flag reading is set (when there is one)


def flag_positions(layout: EnvLayout) -> list[int]:
    """Components the description marks as flags."""
    return [i for i, c in enumerate(layout.components) if c.unit == FLAG_UNIT]


def feedback_fits(layout: EnvLayout) -> bool:
    """Box actions and a named, small observation (one weight per reading per dimension)."""
    return layout.action_kind == "box" and layout.named and 0 < len(layout.components) <= 12


#: The start the offline generator offers: every reading, no optional part, every weight zero.
#: Measured (RESULTS.md, stop 22): the fully linear law written out scores 285.6 on the
#: continuous lander, and CMA-ES from all zeros with unit steps reached holdout 226 in 240 s;
#: the optional parts add constants the start does not need.
START_SHAPE = FeedbackShape(absolute=False, target=False, switch=False)


def feedback_start(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
    """The start-list builder: a neutral (all-zero) linear law over every reading.

    Zero, not random: a random dense law flies or spins off, and CMA-ES spends its first
    generations undoing it; from zero each weight grows only as far as the returns ask.
    """
    return feedback_box(env, rng, t, START_SHAPE, zero=True)


def _weight(rng: random.Random, gain: float, scale: float, zero: bool) -> float:
    return 0.0 if zero else rng.gauss(0.0, 1.0) * gain / scale


def _law(
    env: EnvView, rng: random.Random, dim: int, positions: list[int], extra: list[str], zero: bool, t: float
) -> str:
    """``w . readings + extra terms + bias`` for action ``dim``."""
    half = env.action_scale(dim)
    gain = (0.3 + 0.5 * t) * half
    terms = _terms(env, rng, positions, gain, zero) + extra
    bias = env.action_centre(dim) + (0.0 if zero else rng.gauss(0.0, 0.2) * half)
    return " + ".join([*terms, sig(bias)])


def feedback_box(
    env: EnvView, rng: random.Random, t: float, shape: FeedbackShape = FeedbackShape(), zero: bool = False
) -> tuple[str, str]:
    """The body of a feedback law (``zero``: every weight and bias 0.0, a neutral start for CMA-ES)."""
    lay = env.layout
    flags = flag_positions(lay)
    signals = [i for i in range(len(lay.components)) if i not in flags]
    lines: list[str] = []
    extra_of: dict[int, list[str]] = {}
    if shape.target and signals:
        target = _law_target(env, rng, signals, zero, t)
        lines.append(f"target = min(max({target}, -1.0), 1.0)")
    for dim in range(len(lay.action_vars)):
        half = env.action_scale(dim)
        extra = []
        if shape.absolute:
            for p in sorted({a for a, _ in lay.rate_pairs}):
                c = lay.components[p]
                extra.append(f"{sig(_weight(rng, half, c.scale, zero))} * abs({lay.ref(c)})")
        if shape.target and signals:
            extra.append(f"{sig(0.0 if zero else rng.gauss(0.0, 0.5) * half)} * target")
        extra_of[dim] = extra
    # In flight (or with no flag law) every reading counts; the flags only pick the law.
    reads = signals if shape.switch and flags else list(range(len(lay.components)))
    free = [
        f"{var} = {_law(env, rng, d, reads, extra_of[d], zero, t)}" for d, var in enumerate(lay.action_vars)
    ]
    if shape.switch and flags:
        test = " or ".join(f"{lay.ref(lay.components[f])} > 0.5" for f in flags)
        held = [f"{var} = {_law(env, rng, d, signals, [], zero, t)}" for d, var in enumerate(lay.action_vars)]
        lines += [f"if {test}:", *("    " + x for x in held), "else:", *("    " + x for x in free)]
    else:
        lines += free
    lines.append(f"return {env.box_return([env.clip(d, v) for d, v in enumerate(lay.action_vars)])}")
    parts = [
        p
        for p, on in (
            ("abs", shape.absolute),
            ("target", shape.target),
            ("contact law", shape.switch and flags),
        )
        if on
    ]
    return "\n".join(lines), "full-state feedback law" + (f" ({', '.join(parts)})" if parts else "")


def _law_target(env: EnvView, rng: random.Random, signals: list[int], zero: bool, t: float) -> str:
    terms = _terms(env, rng, signals, 0.5 + t, zero)
    return " + ".join([*terms, sig(0.0 if zero else rng.gauss(0.0, 0.2))])


def _terms(env: EnvView, rng: random.Random, positions: list[int], gain: float, zero: bool) -> list[str]:
    """``w * reading`` for each position, weights drawn in position order (one draw each)."""
    lay = env.layout
    return [
        f"{sig(_weight(rng, gain, lay.components[p].scale, zero))} * {lay.ref(lay.components[p])}"
        for p in positions
    ]
