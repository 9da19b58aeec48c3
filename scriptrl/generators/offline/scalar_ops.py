"""Mutations that change numbers and actions but not the program's shape.

Each takes (env, analysis, temperature, rng) and returns (child source, note) or None.
"""

from __future__ import annotations

import random

from scriptrl.generators import astutil as au
from scriptrl.generators.offline.env_view import EnvView
from scriptrl.generators.offline.tree_edit import action_sites, table_groups


def op_perturb(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    idx = [i for i, s in enumerate(an.sites) if s.role == "tunable"]
    if not idx:
        return None
    p = min(1.0, (0.5 + 2.5 * t) / len(idx))  # about 0.5 + 2.5 t constants, at least one
    chosen = [i for i in idx if rng.random() < p] or [rng.choice(idx)]
    changes: dict[int, float] = {}
    words = []
    for i in chosen:
        s = an.sites[i]
        v = float(s.value)
        if s.is_int:
            step = round(rng.gauss(0.0, 0.6 + 2.0 * t) * max(1.0, 0.1 * abs(v)))
            new = v + (step or rng.choice((-1, 1)))
        else:
            scale = env.site_scale(an, s)
            new = v * (1.0 + rng.gauss(0.0, 0.05 + 0.35 * t)) + rng.gauss(0.0, (0.02 + 0.2 * t) * scale)
            if rng.random() < 0.08 * t:
                new = -new
        changes[i] = new
        words.append(f"line {s.line}: {au.fmt_number(v, s.is_int)} -> {au.fmt_number(new, s.is_int)}")
    child = au.write_numbers(an.source, an, changes)
    head = "perturbed 1 constant" if len(chosen) == 1 else f"perturbed {len(chosen)} constants"
    shown = "; ".join(words[:4]) + ("; ..." if len(words) > 4 else "")
    return child, f"{head} ({shown})"


def op_change_action(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    idx = action_sites(env, an)
    if not idx:
        return None
    i = rng.choice(idx)
    s = an.sites[i]
    new = rng.choice([a for a in env.layout.actions if a != s.value])
    return au.write_numbers(
        an.source, an, {i: new}
    ), f"changed the action on line {s.line}: {s.value} -> {new}"


def op_table_edit(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    tables = table_groups(env, an)
    if not tables:
        return None
    g = max(tables, key=len) if rng.random() < 0.8 else rng.choice(tables)
    p = 0.01 + 0.06 * t
    m = 1 + sum(rng.random() < p for _ in range(len(g) - 1))
    picks = sorted(rng.sample(range(len(g)), min(m, len(g))))
    changes = {}
    for k in picks:
        old = an.sites[g[k]].value
        changes[g[k]] = rng.choice([a for a in env.layout.actions if a != old])
    shown = ", ".join(f"[{k}] {an.sites[g[k]].value}->{int(changes[g[k]])}" for k in picks[:6])
    more = ", ..." if len(picks) > 6 else ""
    return au.write_numbers(an.source, an, changes), f"changed {len(picks)} table entries ({shown}{more})"


def op_table_block(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    tables = table_groups(env, an)
    if not tables:
        return None
    g = max(tables, key=len)
    length = rng.randint(2, max(2, int(len(g) * (0.05 + 0.15 * t))))
    start = rng.randrange(0, len(g) - length + 1)
    action = rng.choice(env.layout.actions)
    changes = {g[k]: action for k in range(start, start + length) if an.sites[g[k]].value != action}
    if not changes:
        return None
    return (
        au.write_numbers(an.source, an, changes),
        f"set table entries {start}..{start + length - 1} to action {action}",
    )
