"""Table edits guided by the parent's episodes (sparse and delayed reward).

The trusted evaluator's digest says, per episode, how it ended, its return, its last
few (state, action) steps and, for discrete observations, how often it acted in each
state (``action_summary["visits"]``). From that, without ever giving a program the
simulator, a lookup-table policy is edited where it went wrong:

* the state an unsuccessful episode acted in last (the step into a hole, off a cliff);
* states an unsuccessful episode kept returning to (a loop that ran into the time limit);
* never a state on the way of an episode that did best, so paths that worked are kept.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from scriptrl.generators import astutil as au
from scriptrl.generators.offline.env_view import EnvView
from scriptrl.generators.offline.tree_edit import table_groups


@dataclass(frozen=True)
class Blame:
    """States to change, with how much each is to blame, and states to keep."""

    weights: dict[int, float]
    keep: frozenset[int]


def _visits(ep: dict) -> dict[int, int]:
    raw = (ep.get("action_summary") or {}).get("visits") or {}
    out: dict[int, int] = {}
    for k, v in raw.items():
        try:
            out[int(k)] = int(v)
        except (TypeError, ValueError):
            continue
    return out


def _tail_states(ep: dict) -> list[int]:
    out = []
    for step in ep.get("tail") or []:
        obs = step.get("obs") if isinstance(step, dict) else None
        if type(obs) is int:
            out.append(obs)
    return out


def blame(episodes: list[dict]) -> Blame:
    """Which states the episodes of one evaluation point at (pure: the digest only)."""
    eps = [e for e in episodes if isinstance(e, dict) and isinstance(e.get("return"), int | float)]
    if not eps:
        return Blame({}, frozenset())
    best = max(e["return"] for e in eps)
    spread = best > min(e["return"] for e in eps)
    keep: set[int] = set()
    weights: dict[int, float] = {}
    for e in eps:
        if spread and e["return"] >= best:
            keep |= set(_visits(e)) | set(_tail_states(e))
    for e in eps:
        if spread and e["return"] >= best:
            continue
        tail = _tail_states(e)
        if e.get("end") == "terminated" and tail:
            weights[tail[-1]] = weights.get(tail[-1], 0.0) + 3.0
        for s, n in _visits(e).items():
            if n >= 3:  # came back to it: part of a loop
                weights[s] = weights.get(s, 0.0) + n / 3.0
    free = {s: w for s, w in weights.items() if s not in keep}
    return Blame(free or weights, frozenset(keep))


def op_table_guided(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    """Change the table's action at states the parent's failed episodes point at."""
    episodes = (env.digest or {}).get("digest") or []
    n = env.layout.n_states
    groups = [g for g in table_groups(env, an) if n is not None and len(g) == n]
    if not episodes or not groups:
        return None
    b = blame(episodes)
    states = [s for s in b.weights if 0 <= s < len(groups[0])]
    if not states:
        return None
    k = min(len(states), 1 + int(rng.random() * (1 + 2 * t)))
    weights = [b.weights[s] for s in states]
    chosen: list[int] = []
    while len(chosen) < k:
        s = rng.choices(states, weights=weights)[0]
        if s not in chosen:
            chosen.append(s)
    g = groups[0]
    changes = {}
    for s in sorted(chosen):
        old = an.sites[g[s]].value
        changes[g[s]] = rng.choice([a for a in env.layout.actions if a != old])
    shown = ", ".join(f"[{s}] {an.sites[g[s]].value}->{int(changes[g[s]])}" for s in sorted(chosen))
    note = f"changed {len(chosen)} table entries where failed episodes went wrong ({shown})"
    if b.keep:
        note += f"; kept the {len(b.keep)} states of the best episodes"
    return au.write_numbers(an.source, an, changes), note
