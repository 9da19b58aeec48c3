"""Initial programs: readable templates filled from the environment's layout.

Each returns (body text without the component reads, note). Numbers are written with
any sign; rendering turns "a + -0.5 * b" into "a - 0.5 * b".
"""

from __future__ import annotations

import random
import textwrap

from scriptrl.generators.offline.env_view import EnvView, sig


def docstring(*paragraphs: str) -> str:
    """A docstring: one line when it fits, else a summary line and wrapped paragraphs."""
    one = " ".join(paragraphs)
    if len(one) <= 84:
        return f'    """{one}"""'
    lines = [paragraphs[0]]
    for para in paragraphs[1:]:
        lines += ["", *textwrap.wrap(para, 88)]
    body = "\n".join(f"    {line}" if line else "" for line in lines)
    return f'    """{body.lstrip()}\n    """'


def linear_discrete(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
    lay = env.layout
    gain = 0.5 + t
    if len(lay.actions) == 2:
        expr, centre = env.linear(env.pick(rng, t), gain, rng, None)
        lo, hi = lay.actions
        return f"score = {expr}\nreturn {hi} if score > {sig(centre)} else {lo}", "linear threshold rule"
    lines = []
    for var in lay.action_vars:
        bias = rng.gauss(0.0, 0.3 * gain)
        lines.append(f"{var} = {env.linear(env.pick(rng, t), gain, rng, bias)[0]}")
    lines.append("scores = [" + ", ".join(lay.action_vars) + "]")
    if lay.actions[0] == 0:
        lines.append("return scores.index(max(scores))")
    else:
        lines.append(f"return {list(lay.actions)!r}[scores.index(max(scores))]")
    return "\n".join(lines), f"argmax over {len(lay.actions)} linear scores"


def rules_discrete(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
    lay = env.layout
    n = len(lay.components)
    lines = []
    default = rng.choice(lay.actions)
    others = [a for a in lay.actions if a != default] or [default]
    k = rng.randint(1, 2 + int(t * 2))
    for _ in range(k):
        first = rng.randrange(n)
        cond = env.condition(first, rng)
        if n > 1 and rng.random() < 0.2 + 0.2 * t:
            cond += f" and {env.condition(rng.choice([p for p in range(n) if p != first]), rng)}"
        lines.append(f"if {cond}:\n    return {rng.choice(others)}")
    lines.append(f"return {default}")
    return "\n".join(lines), f"{k} threshold rule{'s' if k > 1 else ''}"


def table(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
    lay = env.layout
    n = lay.n_states or 1
    if rng.random() < 0.2:
        values = [rng.choice(lay.actions)] * n
        for i in rng.sample(range(n), max(1, n // 8)):
            values[i] = rng.choice(lay.actions)
    else:
        values = [rng.choice(lay.actions) for _ in range(n)]
    return f"TABLE = {values!r}\nreturn TABLE[obs]", f"lookup table over {n} states"


def linear_box(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
    def action(dim: int) -> str:
        gain = (0.5 + t) * env.action_scale(dim)
        bias = env.action_centre(dim) + rng.gauss(0.0, 0.2) * gain
        return env.linear(env.pick(rng, t), gain, rng, bias)[0]

    return env.clipped_box(action), "clipped linear map"


def rules_box(env: EnvView, rng: random.Random, t: float) -> tuple[str, str]:
    lay = env.layout
    n = len(lay.components)
    lines = [f"{var} = {sig(env.action_const(d, rng))}" for d, var in enumerate(lay.action_vars)]
    k = rng.randint(1, 2 + int(t * 2))
    for _ in range(k):
        d = rng.randrange(len(lay.action_vars))
        lines.append(
            f"if {env.condition(rng.randrange(n), rng)}:\n"
            f"    {lay.action_vars[d]} = {sig(env.action_const(d, rng))}"
        )
    lines.append(f"return {env.box_return([env.clip(d, v) for d, v in enumerate(lay.action_vars)])}")
    return "\n".join(lines), f"{k} threshold rule{'s' if k > 1 else ''} setting constant actions"


# ====================================================================== mutation operators
