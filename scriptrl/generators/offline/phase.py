"""Finite-state (phase) machines with timers: a ``class Policy`` with ``reset`` and ``act``.

A phase variable and a step counter make behaviour that depends on time: an open-loop
periodic pattern (a gait: each phase holds its own action) plus feedback from the
observation inside each phase, and phase changes on a timer or on a condition of the
observation (a leg touching the ground). Timers and gains are literals, so mutation and
CMA-ES tune them; the generic operators edit the conditions and the feedback terms.
"""

from __future__ import annotations

import random
import textwrap

from scriptrl.generators.offline.env_view import EnvView, sig
from scriptrl.generators.offline.templates import docstring


def _phase_action(env: EnvView, rng: random.Random, t: float) -> list[str]:
    lay = env.layout
    if lay.action_kind == "discrete":
        return [f"return {rng.choice(lay.actions)}"]
    out = []
    n = len(lay.components)
    for dim, var in enumerate(lay.action_vars):
        lo, hi = env.action_bounds(dim)
        half = (hi - lo) / 2.0 if lo is not None and hi is not None else 1.0
        base = sig(env.action_const(dim, rng))
        if n and rng.random() < 0.6:
            pos = rng.randrange(n)
            w = rng.gauss(0.0, 0.3 + 0.3 * t) * half / lay.components[pos].scale
            out.append(f"{var} = {base} + {sig(w)} * {lay.ref(lay.components[pos])}")
        else:
            out.append(f"{var} = {base}")
    return out


def _switch_condition(env: EnvView, rng: random.Random, k: int) -> str:
    timer = rng.randint(5, 40)
    cond = f"self.timer >= {timer}"
    if env.layout.components and rng.random() < 0.4:
        early = env.condition(rng.randrange(len(env.layout.components)), rng)
        cond += f" or (self.timer >= {max(1, timer // 4)} and {early})"
    return cond


def phase_machine(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
    """The whole program text (a class, so it is not wrapped in ``def policy``)."""
    lay = env.layout
    phases = rng.choice((2, 2, 3, 4))
    act: list[str] = []
    if lay.named:
        act += [f"{c.var} = {c.read('obs')}" for c in lay.components]
    act += ["self.steps += 1", "self.timer += 1"]
    for k in range(phases):
        head = "if" if k == 0 else "elif"
        act.append(f"{head} self.phase == {k} and ({_switch_condition(env, rng, k)}):")
        act += [f"    self.phase = {(k + 1) % phases}", "    self.timer = 0"]
    for k in range(phases):
        head = "if" if k == 0 else ("elif" if k < phases - 1 else "else")
        act.append(f"{head} self.phase == {k}:" if head != "else" else "else:")
        act += ["    " + x for x in _phase_action(env, rng, t)]
    if lay.action_kind == "box":
        act.append(f"return {env.box_return([env.clip(d, v) for d, v in enumerate(lay.action_vars)])}")
    doc = docstring(
        f"{lay.env_id} policy: a machine of {phases} phases.",
        "Each phase has its own action and feedback; it ends on its timer (steps spent in the"
        " phase) or on a condition of the observation, and the next phase begins.",
        f"{lay.action_legend()}.",
    )
    reset = "def reset(self, seed=None):\n    self.phase = 0\n    self.timer = 0\n    self.steps = 0"
    body = f"def act(self, obs):\n{textwrap.indent(chr(10).join(act), '    ')}"
    code = f"class Policy:\n{doc}\n\n{textwrap.indent(reset, '    ')}\n\n{textwrap.indent(body, '    ')}\n"
    return code, f"phase machine with {phases} phases and timers"
