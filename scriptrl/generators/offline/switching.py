"""Switching controllers for Box actions: hold near the target, pump energy elsewhere.

A linear map cannot swing a pendulum up and then balance it, nor rock a car out of a valley:
the action that helps far from the target (push along the motion, adding energy) is the
opposite of the one that helps near it (push back towards the target, damp the motion). A
switching controller writes both laws and a tunable test that picks one:

* the hold law is a PD term per (position, rate) pair the description names with
  ``rate_of``, ``kp * (target - x) - kd * v``, with large gains and its own sign per pair
  (which way an actuator moves each pair is not known in advance);
* the pump law pushes along one rate, ``k * v * (cap - abs(v))``: it adds energy while the
  rate is below ``cap`` and brakes above it, so the swing does not grow without bound;
* the switch compares one component with a threshold; it prefers a component no pair uses
  (the cosine of an angle whose sine is paired says where the swing is in a way the pair
  does not).

The family is offered only where it fits (``switching_fits``): at most one rate pair per
action dimension. With more pairs than actuators (landers, walkers) the state is not a set of
oscillators each driven by its own actuator, and the start slots stay with linear maps.
Every gain, target, cap and threshold is a plain literal, so CMA-ES tunes them; the
operators ``op_flip_law`` and ``op_scale_law`` (family_ops) flip or rescale one law's terms.
"""

from __future__ import annotations

import ast
import math
import random
import textwrap
from collections.abc import Callable

from scriptrl.generators import astutil as au
from scriptrl.generators.layout import EnvLayout
from scriptrl.generators.offline.env_view import EnvView, sig
from scriptrl.generators.offline.templates import docstring

Template = Callable[[EnvView, random.Random, float], tuple[str, str]]


def switching_fits(layout: EnvLayout) -> bool:
    """Whether switching starts and operators are offered: Box actions, named components, and at
    least one but no more rate pairs than action dimensions."""
    return (
        layout.action_kind == "box"
        and layout.named
        and bool(layout.rate_pairs)
        and len(layout.rate_pairs) <= len(layout.action_vars)
    )


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def hold_term(env: EnvView, pair: tuple[int, int], rng: random.Random, half: float, sign: int) -> str:
    """``kp * (target - x) - kd * v`` (negated when ``sign`` < 0) with large gains."""
    comps = env.layout.components
    x, v = comps[pair[0]], comps[pair[1]]
    target = (x.lo + x.hi) / 2.0  # the middle of the typical range (tuning moves it)
    kp = sign * _log_uniform(rng, 3.0, 12.0) * half / x.scale
    kd = sign * _log_uniform(rng, 4.0, 16.0) * half / v.scale
    return f"{sig(kp)} * ({sig(target)} - {env.layout.ref(x)}) - {sig(kd)} * {env.layout.ref(v)}"


def pump_term(env: EnvView, pair: tuple[int, int], rng: random.Random, half: float, sign: int) -> str:
    """``k * v * (cap - abs(v))``: push along the rate while it is below ``cap``, brake above."""
    v = env.layout.ref(env.layout.components[pair[1]])
    scale = env.layout.components[pair[1]].scale
    cap = rng.uniform(0.6, 1.2) * scale
    k = sign * _log_uniform(rng, 0.5, 3.0) * half / (cap / 2.0) ** 2
    return f"{sig(k)} * {v} * ({sig(cap)} - abs({v}))"


def switch_test(env: EnvView, rng: random.Random, side: str) -> str:
    """``c > threshold`` (or ``<``) on a component no pair uses, else on one a pair uses."""
    lay = env.layout
    paired = {p for pair in lay.rate_pairs for p in pair}
    free = [i for i in range(len(lay.components)) if i not in paired]
    pos = rng.choice(free or sorted(paired))
    c = lay.components[pos]
    threshold = (c.lo + c.hi) / 2.0 + rng.uniform(-0.8, 0.8) * c.scale
    return f"{lay.ref(c)} {side} {sig(threshold)}"


def switching_box(
    env: EnvView, rng: random.Random, t: float, sign: int = 1, side: str = ">"
) -> tuple[str, str]:
    """A whole switching controller (``def policy``); ``sign`` is the assumed actuator direction (it signs
    every hold term and the pump), ``side`` which side of the threshold holds."""
    lay = env.layout
    pairs = list(lay.rate_pairs)
    hold, pump = [], []
    for dim, var in enumerate(lay.action_vars):
        half, centre = env.action_scale(dim), env.action_centre(dim)
        bias = f" + {sig(centre)}" if centre else ""
        terms = [hold_term(env, p, rng, half, sign) for p in pairs]
        hold.append(f"{var} = " + " + ".join(terms) + bias)
        pump.append(f"{var} = {pump_term(env, pairs[dim % len(pairs)], rng, half, sign)}{bias}")
    lines = [f"{c.var} = {c.read('obs')}" for c in lay.components]
    lines += [f"if {switch_test(env, rng, side)}:", *("    " + x for x in hold)]
    lines += ["else:", *("    " + x for x in pump)]
    lines.append(f"return {env.box_return([env.clip(d, v) for d, v in enumerate(lay.action_vars)])}")
    doc = docstring(
        f"{lay.env_id} policy: a switching controller.",
        "Under the if (near the target) it holds: a PD law pushes each position towards its"
        " target and damps its rate. Under the else it pumps energy: it pushes along the rate,"
        " less as the rate nears its cap, and brakes above the cap.",
        f"{lay.action_legend()}.",
    )
    code = f"def policy(obs):\n{doc}\n" + textwrap.indent("\n".join(lines), "    ") + "\n"
    return code, f"switching controller (hold when {side} the threshold, actuator sign {sign:+d})"


def _variant(sign: int, side: str) -> Template:
    def build(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
        return switching_box(env, rng, t, sign, side)

    build.__name__ = f"switching_{'pos' if sign > 0 else 'neg'}_{'above' if side == '>' else 'below'}"
    return build


#: The four starts: actuator sign times the side of the threshold that holds.
SWITCHING_VARIANTS: tuple[Template, ...] = tuple(_variant(s, side) for s in (1, -1) for side in (">", "<"))


# ---------------------------------------------------------------- recognising a switch


def find_switch(env: EnvView, an: au.Analysis) -> ast.If | None:
    """The top-level ``if test: ... else: ...`` of the entry function whose two branches only
    assign action variables (a switching controller's two laws), or None."""
    if an.entry is None:
        return None
    acts = set(env.layout.action_vars)

    def laws(block: list[ast.stmt]) -> bool:
        return bool(block) and all(
            isinstance(s, ast.Assign)
            and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name)
            and s.targets[0].id in acts
            for s in block
        )

    for s in an.entry.body:
        if isinstance(s, ast.If) and isinstance(s.test, ast.Compare) and laws(s.body) and laws(s.orelse):
            return s
    return None


def pair_of_term(env: EnvView, an: au.Analysis, term: ast.expr) -> int | None:
    """Index of the rate pair whose components ``term`` reads, or None."""
    read = {an.comp_vars[n.id] for n in ast.walk(term) if isinstance(n, ast.Name) and n.id in an.comp_vars}
    for k, pair in enumerate(env.layout.rate_pairs):
        if read & set(pair):
            return k
    return None


def lead_constant(term: ast.expr) -> ast.expr | None:
    """The number a product starts with (``kp`` in ``kp * (t - x)``, ``k`` in ``k * v * (...)``)."""
    node = term
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        if au.is_signed_number(node.left):
            return node.left
        node = node.left
    return None
