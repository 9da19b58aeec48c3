"""Crossover: constants mixed between programs of one shape, statements transplanted between others."""

from __future__ import annotations

import ast
import copy
import random
from dataclasses import dataclass

from scriptrl.generators import astutil as au
from scriptrl.generators.base import ParentInfo
from scriptrl.generators.offline.env_view import EnvView
from scriptrl.generators.offline.tree_edit import (
    flatten,
    names_ok,
    reads_component,
    rebuild,
    replace_child,
    short,
    table_groups,
)


def mix_constants(env: EnvView, base: ParentInfo, other: ParentInfo, t: float, rng: random.Random):
    """Same structure: take each differing number from either parent (floats sometimes blended)."""
    an_a, an_b = env.analyze(base.source), env.analyze(other.source)
    if len(an_a.sites) != len(an_b.sites):
        return None
    diff = [i for i, (x, y) in enumerate(zip(an_a.sites, an_b.sites, strict=True)) if x.value != y.value]
    if not diff:
        return None
    changes: dict[int, float] = {}
    # Lookup tables: one- or two-point crossover keeps neighbouring states together.
    tables = table_groups(env, an_a)
    in_table = {i for g in tables for i in g}
    notes = []
    for g in tables:
        if rng.random() < 0.5:
            cut = (
                sorted(rng.sample(range(1, len(g)), min(2, len(g) - 1)))
                if rng.random() < 0.5
                else [rng.randrange(1, len(g))]
            )
            lo, hi = (cut[0], cut[1]) if len(cut) == 2 else (cut[0], len(g))
            for k in range(lo, hi):
                changes[g[k]] = an_b.sites[g[k]].value
            notes.append(f"table entries {lo}..{hi - 1} from #{other.id}")
        else:
            picked = [k for k in range(len(g)) if rng.random() < 0.5]
            for k in picked:
                changes[g[k]] = an_b.sites[g[k]].value
            notes.append(f"uniform table crossover ({len(picked)} entries from #{other.id})")
    blended = taken = 0
    for i in diff:
        if i in in_table:
            continue
        x, y = an_a.sites[i], an_b.sites[i]
        r = rng.random()
        if x.role == "tunable" and not x.is_int and r < 0.3 * t:
            u = rng.random()
            changes[i] = x.value + u * (y.value - x.value)
            blended += 1
        elif r < 0.5:
            changes[i] = y.value
            taken += 1
    effective = [i for i in diff if i in changes and changes[i] != an_a.sites[i].value]
    if not effective:
        i = rng.choice(diff)
        changes[i] = an_b.sites[i].value
        taken += 1
    elif all(i in changes and changes[i] == an_b.sites[i].value for i in diff):
        i = rng.choice(diff)
        changes.pop(i)
    changes = {i: v for i, v in changes.items() if v != an_a.sites[i].value}
    if taken or blended:
        notes.insert(0, f"{taken} constants from #{other.id}" + (f", {blended} blended" if blended else ""))
    return au.write_numbers(
        base.source, an_a, changes
    ), f"mixed constants of #{base.id} and #{other.id}: " + "; ".join(notes)


def stmt_key(s: ast.stmt) -> tuple | None:
    if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
        return ("assign", s.targets[0].id)
    if isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Name):
        return ("aug", s.target.id)
    if isinstance(s, ast.Return):
        return ("return",)
    if isinstance(s, ast.FunctionDef):
        return ("def", s.name)
    return None


@dataclass
class _Replace:
    """Put ``donor`` (from the other parent) in place of ``scope[index]``."""

    scope: list[ast.stmt]
    index: int
    donor: ast.stmt


@dataclass
class _Insert:
    """Insert the other parent's ``rule`` at one of ``positions`` of the entry body."""

    rule: ast.If
    positions: list[int]


@dataclass
class _Condition:
    """Swap the comparison ``target`` for the other parent's ``donor``."""

    target: ast.Compare
    donor: ast.Compare


def transplant(env: EnvView, base: ParentInfo, other: ParentInfo, rng: random.Random):
    """Different structure: replace one statement of ``base`` by ``other``'s, or insert one of its rules."""
    an_a, an_b = env.analyze(base.source), env.analyze(other.source)
    if an_a.entry is None or an_b.entry is None:
        return None
    bound = au.names_bound(an_a.tree)
    moves: list[_Replace | _Insert | _Condition] = []
    for scope_a, scope_b in ((an_a.entry.body, an_b.entry.body), (an_a.tree.body, an_b.tree.body)):
        by_key: dict[tuple, list[ast.stmt]] = {}
        for s in scope_b:
            k = stmt_key(s)
            if k is not None and k != ("def", "policy"):
                by_key.setdefault(k, []).append(s)
        for i, s in enumerate(scope_a):
            k = stmt_key(s)
            for sb in by_key.get(k, []) if k is not None else []:
                if ast.dump(s) != ast.dump(sb):
                    moves.append(_Replace(scope_a, i, sb))
    rules = [
        s
        for s in an_b.entry.body
        if isinstance(s, ast.If) and any(isinstance(x, ast.Return) for x in ast.walk(s))
    ]
    body = an_a.entry.body
    first = next(
        (i for i, s in enumerate(body) if not (au._is_docstring(s) or reads_component(an_a, s))), len(body)
    )
    positions = list(range(first, len(body))) if body and isinstance(body[-1], ast.Return) else []
    for r in rules:
        # After every statement that binds a name the rule reads (``u = ...`` before ``if u > 0``).
        reads = {n.id for n in ast.walk(r) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        after = [
            i + 1
            for i, s in enumerate(body)
            if au.names_bound(s) & reads - au.names_bound(ast.Module([], type_ignores=[]))
        ]
        ok = [p for p in positions if p >= max(after, default=0)]
        if ok:
            moves.append(_Insert(r, ok))
    conds_b = [n for n in au.walk_function(an_b.entry) if isinstance(n, ast.Compare)]
    for n in au.walk_function(an_a.entry):
        if isinstance(n, ast.Compare) and isinstance(an_a.parents.get(n), ast.If | ast.IfExp | ast.BoolOp):
            for c in conds_b:
                if ast.dump(c) != ast.dump(n):
                    moves.append(_Condition(n, c))
    rng.shuffle(moves)
    # Half of the time, first try mixing the terms of a linear expression both parents define.
    if rng.random() < 0.5:
        res = term_crossover(env, an_a, an_b, base, other, rng)
        if res is not None:
            return res
    for move in moves:
        donated = move.rule if isinstance(move, _Insert) else move.donor
        if not names_ok(donated, bound):
            continue
        if isinstance(move, _Condition):
            cond = copy.deepcopy(move.donor)
            x = move.target
            if not replace_child(an_a.parents[x], x, cond):
                continue
            note = f"took the condition `{short(cond)}` from #{other.id} for line {x.lineno} of #{base.id}"
            return env.render(an_a, donors=(other.source,)), note
        if isinstance(move, _Replace):
            new = copy.deepcopy(move.donor)
            old = move.scope[move.index]
            move.scope[move.index] = new
            note = f"took `{short(new)}` from #{other.id} in place of line {old.lineno} of #{base.id}"
        else:
            rule = copy.deepcopy(move.rule)
            if any(ast.dump(rule) == ast.dump(s) for s in body):
                continue
            body.insert(rng.choice(move.positions), rule)
            note = f"inserted the rule `if {ast.unparse(rule.test)}` of #{other.id} into #{base.id}"
        return env.render(an_a, donors=(other.source,)), note
    return term_crossover(env, an_a, an_b, base, other, rng)


def terms_by_component(env: EnvView, an: au.Analysis, expr: ast.expr) -> dict[object, tuple[int, ast.expr]]:
    terms: list[tuple[int, ast.expr]] = []
    flatten(expr, 1, terms)
    out: dict[object, tuple[int, ast.expr]] = {}
    for k, (sign, e) in enumerate(terms):
        comps = {env.comp_of(an, x) for x in ast.walk(e)} - {None}
        key: object = next(iter(comps)) if len(comps) == 1 else ("other", k)
        if key in out:
            key = ("other", k)
        out[key] = (sign, e)
    return out


def term_crossover(
    env: EnvView, an_a: au.Analysis, an_b: au.Analysis, base: ParentInfo, other: ParentInfo, rng
):
    """For an assignment both parents make, take each component's term from either parent."""
    assigns_b = {
        s.targets[0].id: s
        for s in au.walk_function(an_b.entry)
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
    }
    pairs = []
    for s in au.walk_function(an_a.entry):
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
            sb = assigns_b.get(s.targets[0].id)
            if sb is not None and s.value not in an_a.comp_reads and ast.dump(s.value) != ast.dump(sb.value):
                ta, tb = terms_by_component(env, an_a, s.value), terms_by_component(env, an_b, sb.value)
                if len(ta) + len(tb) >= 3 and any(isinstance(k, int) for k in [*ta, *tb]):
                    pairs.append((s, ta, tb))
    if not pairs:
        return None
    s, ta, tb = rng.choice(pairs)
    bound = au.names_bound(an_a.tree)
    keys = list(dict.fromkeys([*ta, *tb]))
    for _ in range(8):
        chosen: list[tuple[int, ast.expr]] = []
        from_b = 0
        for k in keys:
            options = [("a", ta[k])] if k in ta else []
            if k in tb and names_ok(tb[k][1], bound):
                options.append(("b", tb[k]))
            if len(options) == 1 and rng.random() < 0.3:
                continue  # a term only one parent has is inherited half the time
            if options:
                side, term = rng.choice(options)
                from_b += side == "b"
                chosen.append(term)
        if not chosen or not from_b:
            continue
        acc = rebuild([(sg, copy.deepcopy(e)) for sg, e in chosen])
        if ast.dump(acc) in (ast.dump(s.value), ast.dump(assigns_b[s.targets[0].id].value)):
            continue
        s.value = acc
        name = s.targets[0].id
        return env.render(
            an_a
        ), f"{name}: mixed the terms of #{base.id} and #{other.id} ({from_b} from #{other.id})"
    return None
