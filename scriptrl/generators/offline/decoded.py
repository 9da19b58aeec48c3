"""Programs over the named parts of a decoded discrete observation.

When a description says how the state integer splits into parts (grid coordinates,
indices into named place lists) and how actions move along the grid, two families
become possible without naming any environment:

* place-seeking rules: pick a target place from a place-valued part (or the one place of
  a single-place list), act on arrival, otherwise step along an axis towards it
  (``if row < target_row: return 1``);
* a lookup table initialised from such a rule, so the search starts from episodes that
  reach places instead of random tables that never see a reward. Where the description
  publishes the grid (walls, cells to avoid, how often a move slips sideways), the table's
  moves come from value iteration on that described model instead of straight lines; the
  search then picks the actions on arrival and repairs what the model got wrong, guided by
  the episodes (``guided.py``).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from scriptrl.envs.decode import Decode, Place
from scriptrl.generators.layout import EnvLayout
from scriptrl.generators.offline.env_view import EnvView


@dataclass(frozen=True)
class Target:
    """Where a place rule steers: the place a part names (when it names one), or a fixed place."""

    part: int | None  # position of the place-valued part, None for a fixed place
    places: tuple[Place, ...]
    list_name: str
    arrive: int | None  # action on arrival (None: keep moving, the episode ends there)


@dataclass(frozen=True)
class Plan:
    """A place-seeking rule: targets tried in order, then axis moves in ``order``."""

    targets: tuple[Target, ...]
    order: tuple[int, ...]  # axis positions (components) in the order they are closed
    moves: dict[int, tuple[int | None, int | None]]  # axis position -> (action up the axis, action down)


def grid_moves(lay: EnvLayout) -> dict[int, tuple[int | None, int | None]]:
    """For each axis part, the actions that add and subtract one on it (from the description's moves)."""
    dec = lay.decode
    if dec is None:
        return {}
    axes = dec.axes()
    out: dict[int, tuple[int | None, int | None]] = {}
    for k, pos in enumerate(axes):
        up = down = None
        for name, delta in dec.moves:
            others = [d for j, d in enumerate(delta) if j != k]
            if any(others):
                continue
            if delta[k] == 1:
                up = lay.action_named(name)
            elif delta[k] == -1:
                down = lay.action_named(name)
        if up is not None or down is not None:
            out[pos] = (up, down)
    return out


def can_seek(lay: EnvLayout) -> bool:
    dec = lay.decode
    return dec is not None and len(dec.axes()) >= 1 and bool(grid_moves(lay)) and bool(_targets(dec))


def _targets(dec: Decode) -> list[tuple[int | None, str]]:
    found: list[tuple[int | None, str]] = [
        (i, p.places) for i, p in enumerate(dec.parts) if p.places is not None
    ]
    found += [(None, name) for name, plist in dec.places if len(plist) == 1]
    return found


def make_plan(lay: EnvLayout, rng: random.Random) -> Plan:
    dec = lay.decode
    assert dec is not None
    move_actions = {a for pair in grid_moves(lay).values() for a in pair if a is not None}
    others = [a for a in lay.actions if a not in move_actions]
    found = _targets(dec)
    # A part that can name "no place" (more values than places) is tried first: it says
    # whether that place still matters; a fixed single place comes last.
    found.sort(
        key=lambda f: (
            f[0] is None,
            -(dec.parts[f[0]].size > len(dec.place_list(f[1]))) if f[0] is not None else 0,
        )
    )
    targets = []
    # Arriving at different targets calls for different actions (pick up here, drop off there).
    pool = rng.sample(others, len(others))
    for k, (part, name) in enumerate(found):
        arrive = pool[k % len(pool)] if pool and part is not None else None
        targets.append(Target(part, dec.place_list(name), name, arrive))
    moves = grid_moves(lay)
    order = list(moves)
    rng.shuffle(order)
    return Plan(tuple(targets), tuple(order), moves)


def plan_action(lay: EnvLayout, plan: Plan, parts: tuple[int, ...], rng: random.Random) -> int:
    """What the place rule does in the state with these part values (trusted side, for tables)."""
    dec = lay.decode
    assert dec is not None
    axes = dec.axes()
    target: tuple[int, ...] | None = None
    arrive = None
    for t in plan.targets:
        if t.part is None:
            target, arrive = t.places[0].at, t.arrive
            break
        v = parts[t.part]
        if v < len(t.places):
            target, arrive = t.places[v].at, t.arrive
            break
    if target is not None:
        here = tuple(parts[a] for a in axes)
        if here == target and arrive is not None:
            return arrive
        step = path_step(lay, plan, here, target)
        if step is not None:
            return step
        for pos in plan.order:
            goal = target[axes.index(pos)]
            up, down = plan.moves[pos]
            if parts[pos] < goal and up is not None:
                return up
            if parts[pos] > goal and down is not None:
                return down
    return rng.choice(lay.actions)


def _neighbours(lay: EnvLayout, plan: Plan, cell: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]]:
    """(action, cell) one move away, inside the grid, not through a wall."""
    dec = lay.decode
    assert dec is not None
    axes = dec.axes()
    walls = {frozenset(w) for w in dec.walls}
    out = []
    for pos in plan.order:
        k = axes.index(pos)
        for action, d in zip(plan.moves[pos], (1, -1), strict=True):
            nxt = tuple(v + d if j == k else v for j, v in enumerate(cell))
            if action is None or not 0 <= nxt[k] < dec.parts[pos].size or frozenset((cell, nxt)) in walls:
                continue
            out.append((action, nxt))
    return out


def _blocked(dec: Decode, cell: tuple[int, ...]) -> bool:
    return bool(dec.avoid and dec.grid and len(cell) == 2 and dec.grid[cell[0]][cell[1]] in dec.avoid)


_VALUES: dict[tuple, dict[tuple[int, ...], list[tuple[float, int]]]] = {}
#: Discount of the planner: just below 1, so that of equally safe paths the shorter wins.
_GAMMA = 0.999


def _outcomes(
    lay: EnvLayout, plan: Plan, cell: tuple[int, ...]
) -> list[tuple[int, list[tuple[float, tuple]]]]:
    """For each move action, the cells it leads to with their probabilities (slips go sideways)."""
    dec = lay.decode
    assert dec is not None
    axes = dec.axes()
    where = {a: c for a, c in _neighbours(lay, plan, cell)}
    out = []
    for pos in plan.order:
        for action in plan.moves[pos]:
            if action is None:
                continue
            side = [a for p in plan.order if p != pos for a in plan.moves[p] if a is not None]
            slip = dec.slip if side and len(axes) > 1 else 0.0
            probs = [(1.0 - slip, where.get(action, cell))]
            probs += [(slip / len(side), where.get(a, cell)) for a in side]
            out.append((action, probs))
    return out


def action_values(
    lay: EnvLayout, plan: Plan, target: tuple[int, ...]
) -> dict[tuple[int, ...], list[tuple[float, int]]]:
    """Value iteration on the described grid: reaching ``target`` is worth 1, avoided cells 0.

    With no slip this is a shortest path (walls respected); with the described slip it
    prefers paths that stay away from avoided cells.
    """
    key = (id(lay.decode), plan.order, target)
    found = _VALUES.get(key)
    if found is not None:
        return found
    dec = lay.decode
    assert dec is not None
    sizes = [dec.parts[a].size for a in dec.axes()]
    cells = [tuple(int(x) for x in idx) for idx in itertools.product(*(range(s) for s in sizes))]
    live = [c for c in cells if c != target and not _blocked(dec, c)]
    model = {c: _outcomes(lay, plan, c) for c in live}
    value = {c: 0.0 for c in cells}
    value[target] = 1.0
    q: dict[tuple[int, ...], list[tuple[float, int]]] = {}
    for _ in range(3000):
        change = 0.0
        for c in live:
            q[c] = [(sum(p * _GAMMA * value[n] for p, n in probs), a) for a, probs in model[c]]
            best = max(v for v, _ in q[c])
            change = max(change, abs(best - value[c]))
            value[c] = best
        if change < 1e-6:
            break
    if len(_VALUES) > 256:
        _VALUES.clear()
    _VALUES[key] = q
    return q


def path_step(lay: EnvLayout, plan: Plan, here: tuple[int, ...], target: tuple[int, ...]) -> int | None:
    """The planner's move towards ``target``; None where no move gets closer (unreachable)."""
    q = action_values(lay, plan, target).get(here)
    if not q:
        return None
    best, action = max(q, key=lambda x: x[0])  # the first of equal values: plan.order decides ties
    return action if best > 0.0 else None


def _place_comment(t: Target) -> str:
    return ", ".join(p.name for p in t.places)


def place_rules(env: EnvView, rng: random.Random, temperature: float) -> tuple[str, str]:
    """Rules comparing decoded parts with a target place: ``if row < target_row: return DOWN``."""
    lay = env.layout
    dec = lay.decode
    assert dec is not None
    plan = make_plan(lay, rng)
    comps = lay.components
    axes = dec.axes()
    tvars = [f"target_{comps[a].var}" for a in axes]
    lines: list[str] = []
    lists_used = {t.list_name for t in plan.targets if t.part is not None}
    list_vars = {}
    for name in lists_used:
        var = name.lower() if name.isidentifier() else "places"
        list_vars[name] = var
        coords = ", ".join("(" + ", ".join(str(v) for v in p.at) + ")" for p in dec.place_list(name))
        lines.append(f"{var} = [{coords}]")
    arrives = any(t.arrive is not None for t in plan.targets)
    if arrives:
        lines.append("arrived = None  # the action to take on reaching the target")
    branches: list[str] = []
    for i, t in enumerate(plan.targets):
        if t.part is None:
            body = [f"{', '.join(tvars)} = {', '.join(str(v) for v in t.places[0].at)}"]
        else:
            body = [f"{', '.join(tvars)} = {list_vars[t.list_name]}[{comps[t.part].var}]"]
            if t.arrive is not None:
                body.append(f"arrived = {t.arrive}")
        always = t.part is None or dec.parts[t.part].size <= len(t.places)
        cond = None if always or t.part is None else f"{comps[t.part].var} < {len(t.places)}"
        head = ("if" if i == 0 else "elif") if cond else "else"
        if cond is None and i == 0:
            branches += body
            break
        branches.append(f"{head} {cond}:" if cond else "else:")
        branches += ["    " + b for b in body]
        if cond is None:
            break
    else:
        branches += ["else:", f"    {', '.join(tvars)} = {', '.join(comps[a].var for a in axes)}"]
    lines += branches
    here = " and ".join(f"{comps[a].var} == {tv}" for a, tv in zip(axes, tvars, strict=True))
    if arrives:
        lines.append(f"if arrived is not None and {here}:\n    return arrived")
    for pos in plan.order:
        tv = tvars[axes.index(pos)]
        up, down = plan.moves[pos]
        if up is not None:
            lines.append(f"if {comps[pos].var} < {tv}:\n    return {up}")
        if down is not None:
            lines.append(f"if {comps[pos].var} > {tv}:\n    return {down}")
    lines.append(f"return {rng.choice(lay.actions)}")
    names = "; ".join(f"{t.list_name} ({_place_comment(t)})" for t in plan.targets)
    return "\n".join(lines), f"place-seeking rules over decoded parts towards {names}"


def seeded_table(env: EnvView, rng: random.Random, temperature: float) -> tuple[str, str]:
    """A lookup table whose entries start as a place rule's actions, a few of them random."""
    lay = env.layout
    dec = lay.decode
    assert dec is not None
    plan = make_plan(lay, rng)
    # Variety comes from the plans (targets' actions, axis order, caution); a few random
    # entries in some tables add more, but every one of them can break a working path.
    noise = rng.choice((0.0, 0.0, 0.02, 0.05)) * min(1.0, 0.5 + temperature)
    values = []
    for s in range(dec.n_states):
        a = plan_action(lay, plan, dec.split(s), rng)
        values.append(rng.choice(lay.actions) if rng.random() < noise else a)
    names = ", ".join(t.list_name for t in plan.targets)
    return (
        f"TABLE = {values!r}\nreturn TABLE[obs]",
        f"lookup table seeded by place-seeking rules towards {names}",
    )
