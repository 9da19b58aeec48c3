"""Finite-state (phase) machines with timers: a ``class Policy`` with ``reset`` and ``act``.

A phase variable and a step counter make behaviour that depends on time: an open-loop
periodic pattern (a gait: each phase holds its own action) plus feedback from the
observation inside each phase, and phase changes on a timer or on a condition of the
observation (a leg touching the ground). Timers and gains are literals, so mutation and
CMA-ES tune them; the generic operators edit the conditions and the feedback terms.
"""

from __future__ import annotations

import ast
import copy
import random
import textwrap

from scriptrl.generators import astutil as au
from scriptrl.generators.base import ParentInfo
from scriptrl.generators.offline.env_view import EnvView, sig
from scriptrl.generators.offline.templates import docstring
from scriptrl.program.parsing import parse_python


def _phase_action(env: EnvView, rng: random.Random, t: float) -> list[str]:
    lay = env.layout
    if lay.action_kind == "discrete":
        return [f"return {rng.choice(lay.actions)}"]
    out = []
    n = len(lay.components)
    for dim, var in enumerate(lay.action_vars):
        half = env.action_scale(dim)
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


def _phase_blocks(an: au.Analysis) -> list[list[ast.stmt]]:
    """The action block of each phase: bodies of ``if self.phase == k:`` chains holding no phase change."""
    out: list[list[ast.stmt]] = []
    for node in au.walk_function(an.entry):
        if isinstance(node, ast.If) and "self.phase ==" in ast.unparse(node.test):
            if not any("self.phase =" in ast.unparse(s) for s in node.body):
                out.append(node.body)
                if node.orelse and not isinstance(node.orelse[0], ast.If):
                    out.append(node.orelse)
    return out


def _action_part(an: au.Analysis, box: bool) -> list[ast.stmt] | None:
    """What a program does after reading its components (without the final return, for Box)."""
    if an.entry is None:
        return None
    if an.entry.name == "act":
        blocks = _phase_blocks(an)
        return copy.deepcopy(blocks[0]) if blocks else None
    body = [
        s
        for s in an.entry.body
        if not au._is_docstring(s) and not (isinstance(s, ast.Assign) and s.value in an.comp_reads)
    ]
    if box:
        body = body[:-1] if body and isinstance(body[-1], ast.Return) else body
    return copy.deepcopy(body) or None


def graft_phase(env: EnvView, base: ParentInfo, other: ParentInfo, rng: random.Random):
    """Crossover into a phase machine: one phase of ``base`` acts as ``other`` does."""
    an = env.analyze(base.source)
    if an.entry is None or an.entry.name != "act":
        return None
    blocks = _phase_blocks(an)
    other_an = env.analyze(other.source)
    if other_an.entry is not None and other_an.entry.name == "act":
        donor_blocks = _phase_blocks(other_an)
        donor = copy.deepcopy(rng.choice(donor_blocks)) if donor_blocks else None
    else:
        donor = _action_part(other_an, env.layout.action_kind == "box")
    if not blocks or not donor:
        return None
    k = rng.randrange(len(blocks))
    if ast.dump(ast.Module(blocks[k], [])) == ast.dump(ast.Module(donor, [])):
        return None
    blocks[k][:] = donor
    return env.render(an), f"phase {k} of #{base.id} now acts as #{other.id} does"


def join_under_split(env: EnvView, base: ParentInfo, other: ParentInfo, rng: random.Random):
    """Crossover of two unrelated functions: ``if w . obs + b > 0:`` acts as ``base``, else as ``other``."""
    from scriptrl.generators.offline.controllers import oblique_test

    an, other_an = env.analyze(base.source), env.analyze(other.source)
    if an.entry is None or an.entry.name != "policy" or not env.layout.components:
        return None
    box = env.layout.action_kind == "box"
    mine, theirs = _action_part(an, box), _action_part(other_an, box)
    if not mine or not theirs or other_an.entry is None or other_an.entry.name != "policy":
        return None
    body = an.entry.body
    keep = [
        s for s in body if au._is_docstring(s) or (isinstance(s, ast.Assign) and s.value in an.comp_reads)
    ]
    tail = [body[-1]] if box and isinstance(body[-1], ast.Return) else []
    test = parse_python(oblique_test(env, rng, 1.0), mode="eval").body
    an.entry.body = [*keep, ast.If(test=test, body=mine, orelse=theirs), *tail]
    return env.render(an), f"acts as #{base.id} when {ast.unparse(test)}, else as #{other.id}"
