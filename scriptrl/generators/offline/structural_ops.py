"""Mutations that change the program's shape: conditions added, removed, replaced or flipped,
branches swapped, components exchanged, terms added or removed.

Each takes (env, analysis, temperature, rng) and returns (child source, note) or None.
"""

from __future__ import annotations

import ast
import random

from scriptrl.generators import astutil as au
from scriptrl.generators.offline.env_view import EnvView
from scriptrl.generators.offline.tree_edit import (
    block_of,
    comp_ref,
    entry_nodes,
    flatten,
    rebuild,
    replace_child,
    table_groups,
)

FLIP = {
    ast.Gt: ast.Lt,
    ast.Lt: ast.Gt,
    ast.GtE: ast.LtE,
    ast.LtE: ast.GtE,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
}
SYM = {ast.Gt: ">", ast.Lt: "<", ast.GtE: ">=", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}


def op_flip_compare(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    cands = []
    for node in ast.walk(an.tree):
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in FLIP:
                    cands.append((node, k))
    if not cands:
        return None
    node, k = rng.choice(cands)
    st = au.SourceText(an.source)
    left = node.left if k == 0 else node.comparators[k - 1]
    right = node.comparators[k]
    a = st.span(left)[1]
    b = st.span(right)[0]
    gap = an.source[a:b]
    old, new = SYM[type(node.ops[k])], SYM[FLIP[type(node.ops[k])]]
    if "#" in gap or gap.replace("(", "").replace(")", "").strip() != old:
        return None
    child = au.apply_edits(an.source, [(a, b, gap.replace(old, new, 1))])
    return child, f"flipped the comparison on line {node.lineno} ({old} to {new})"


def op_swap_branches(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    cands = [n for n in entry_nodes(an) if (isinstance(n, ast.If) and n.orelse) or isinstance(n, ast.IfExp)]
    if not cands:
        return None
    node = rng.choice(cands)
    node.body, node.orelse = node.orelse, node.body
    if isinstance(node, ast.IfExp) and ast.dump(node.body) == ast.dump(node.orelse):
        return None
    return env.render(an), f"swapped the branches of the condition on line {node.lineno}"


def new_condition(env: EnvView, an: au.Analysis, rng: random.Random) -> ast.expr:
    pos = rng.randrange(len(env.layout.components))
    comp = env.layout.components[pos]
    op = rng.choice([ast.Gt, ast.Lt, ast.GtE, ast.LtE] if comp.integer else [ast.Gt, ast.Lt])
    value = float(env.threshold(pos, rng, SYM[op]))
    return ast.Compare(
        left=comp_ref(env, an, pos), ops=[op()], comparators=[au.num_node(value, comp.integer, 3)]
    )


def action_vars(env: EnvView, an: au.Analysis) -> list[str]:
    """Variables that make up the returned action of a Box policy (assigned in the policy, not components)."""
    rets = an.returns()
    if not rets:
        return []
    value = rets[-1].value
    assert value is not None  # returns() keeps only the returns that have a value
    read = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
    assigned = {
        n.targets[0].id
        for n in entry_nodes(an)
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
    }
    return sorted((read & assigned) - set(an.comp_vars))


def op_add_condition(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    lay = env.layout
    if not lay.components or an.entry is None or (env.discrete_obs and table_groups(env, an)):
        return None  # a rule in front of a lookup table only hides table entries
    cond = new_condition(env, an, rng)
    if lay.action_kind == "discrete":
        rets = an.returns()
        if not rets:
            return None
        ret = rng.choice(rets)
        where = block_of(an, ret)
        if where is None:
            return None
        block, i = where
        current = ret.value.value if isinstance(ret.value, ast.Constant) else None
        action = rng.choice([a for a in lay.actions if a != current] or list(lay.actions))
        block.insert(i, ast.If(test=cond, body=[ast.Return(value=ast.Constant(value=action))], orelse=[]))
        return env.render(an), f"added `if {ast.unparse(cond)}: return {action}` before line {ret.lineno}"
    names = action_vars(env, an)
    rets = an.returns()
    if not names or not rets:
        return None
    ret = rets[-1]
    where = block_of(an, ret)
    if where is None:
        return None
    block, i = where
    var = rng.choice(names)
    dim = lay.action_vars.index(var) if var in lay.action_vars else 0
    half = env.action_scale(dim)
    if rng.random() < 0.5:
        value: ast.expr = au.num_node(env.action_const(dim, rng), digits=3)
    else:
        pos = rng.randrange(len(lay.components))
        w = rng.gauss(0.0, 0.5 + t) * half / lay.components[pos].scale
        term = ast.BinOp(left=au.num_node(w, digits=3), op=ast.Mult(), right=comp_ref(env, an, pos))
        value = ast.BinOp(left=ast.Name(id=var, ctx=ast.Load()), op=ast.Add(), right=term)
    assign = ast.Assign(targets=[ast.Name(id=var, ctx=ast.Store())], value=value)
    block.insert(i, ast.If(test=cond, body=[assign], orelse=[]))
    return env.render(an), f"added `if {ast.unparse(cond)}: {ast.unparse(assign)}` before line {ret.lineno}"


def op_remove_condition(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    nodes = entry_nodes(an)
    ifs = [n for n in nodes if isinstance(n, ast.If)]
    bools = [
        n for n in nodes if isinstance(n, ast.BoolOp) and isinstance(an.parents.get(n), ast.If | ast.IfExp)
    ]
    cands: list[ast.If | ast.BoolOp] = [*ifs, *bools]
    if not cands:
        return None
    node = rng.choice(cands)
    if isinstance(node, ast.BoolOp):
        k = rng.randrange(len(node.values))
        dropped = node.values.pop(k)
        if len(node.values) == 1:
            replace_child(an.parents[node], node, node.values[0])
        return env.render(an), f"dropped `{ast.unparse(dropped)}` from the condition on line {node.lineno}"
    where = block_of(an, node)
    if where is None:
        return None
    block, i = where
    if node.orelse:
        keep = rng.choice(["body", "orelse"])
        block[i : i + 1] = getattr(node, keep)
        what = "kept only its if-branch" if keep == "body" else "kept only its else-branch"
        return env.render(
            an
        ), f"removed the condition `{ast.unparse(node.test)}` on line {node.lineno} ({what})"
    if i < len(block) - 1:
        del block[i]
        return env.render(an), f"removed the rule `if {ast.unparse(node.test)}` on line {node.lineno}"
    block[i : i + 1] = node.body
    return env.render(an), f"made the rule on line {node.lineno} unconditional"


def op_replace_condition(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    if not env.layout.components:
        return None
    cands = [n for n in entry_nodes(an) if isinstance(n, ast.If | ast.IfExp)]
    if not cands or (env.discrete_obs and table_groups(env, an)):
        return None
    node = rng.choice(cands)
    old = ast.unparse(node.test)
    node.test = new_condition(env, an, rng)
    return env.render(
        an
    ), f"replaced the condition `{old}` on line {node.lineno} by `{ast.unparse(node.test)}`"


def op_change_component(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    comps = env.layout.components
    if len(comps) < 2 or an.entry is None:
        return None
    refs: list[tuple[ast.expr, int]] = []
    for n in entry_nodes(an):
        if n in an.comp_reads:
            continue
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in an.comp_vars:
            refs.append((n, an.comp_vars[n.id]))
        elif isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load):
            pos = env.comp_of(an, n)
            if pos is not None:
                refs.append((n, pos))
    if not refs:
        return None
    node, pos = rng.choice(refs)
    new_pos = rng.choice([p for p in range(len(comps)) if p != pos])
    st = au.SourceText(an.source)
    old_text = st.text(node)
    new_text = ast.unparse(comp_ref(env, an, new_pos))
    edits = [(*st.span(node), new_text)]
    # Carry the number that goes with it over to the new component's range:
    # a threshold keeps its relative position, a weight its effect on the sum.
    old_c, new_c = comps[pos], comps[new_pos]
    parent = an.parents.get(node)
    site_at = {id(x.node): x for x in an.sites}
    rescaled = ""
    if isinstance(parent, ast.Compare):
        for operand in [parent.left, *parent.comparators]:
            site = site_at.get(id(operand))
            if site is not None and site.role == "tunable":
                rel = (site.value - (old_c.lo + old_c.hi) / 2) / old_c.scale
                value = (new_c.lo + new_c.hi) / 2 + rel * new_c.scale
                edits += au.number_edits(st, site, value, an.parents)
                shown = au.fmt_number(value, site.is_int)
                rescaled = f", threshold {au.fmt_number(site.value, site.is_int)} -> {shown}"
                break
    elif isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Mult):
        other = parent.left if parent.right is node else parent.right
        site = site_at.get(id(other))
        if site is not None and site.role == "tunable" and not site.is_int:
            edits += au.number_edits(st, site, site.value * old_c.scale / new_c.scale, an.parents)
            rescaled = ", weight rescaled to its range"
    child = au.apply_edits(an.source, edits)
    return child, f"line {node.lineno}: reads {new_text} instead of {old_text}{rescaled}"


def numeric_assigns(env: EnvView, an: au.Analysis) -> list[ast.Assign]:
    returned = {
        n.value.id for n in entry_nodes(an) if isinstance(n, ast.Return) and isinstance(n.value, ast.Name)
    }
    out = []
    for n in entry_nodes(an):
        if not (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)):
            continue
        name = n.targets[0].id
        if name in an.comp_vars or (env.layout.action_kind == "discrete" and name in returned):
            continue
        v = n.value
        if not isinstance(v, ast.BinOp | ast.UnaryOp | ast.Constant | ast.Name):
            continue
        if isinstance(v, ast.Constant) and type(v.value) is not float:
            continue
        if not any(isinstance(x, ast.Constant) and type(x.value) is float for x in ast.walk(v)) and not any(
            env.comp_of(an, x) is not None for x in ast.walk(v)
        ):
            continue
        if any(
            isinstance(x, ast.Call | ast.List | ast.Tuple | ast.Compare | ast.BoolOp) for x in ast.walk(v)
        ):
            continue
        out.append(n)
    return out


def op_add_term(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    lay = env.layout
    if not lay.components:
        return None
    cands = numeric_assigns(env, an)
    if not cands:
        return None
    node = rng.choice(cands)
    used = {env.comp_of(an, x) for x in ast.walk(node.value)}
    free = [p for p in range(len(lay.components)) if p not in used] or list(range(len(lay.components)))
    pos = rng.choice(free)
    name = node.targets[0].id  # type: ignore[attr-defined]
    half = 1.0
    if lay.action_kind == "box" and name in lay.action_vars:
        half = env.action_scale(lay.action_vars.index(name))
    w = rng.gauss(0.0, 0.3 + 0.5 * t) * half / lay.components[pos].scale
    term = ast.BinOp(left=au.num_node(w, digits=3), op=ast.Mult(), right=comp_ref(env, an, pos))
    terms: list[tuple[int, ast.expr]] = []
    flatten(node.value, 1, terms)
    node.value = rebuild([*terms, (1, term)])
    return env.render(an), f"line {node.lineno}: added the term {ast.unparse(term)} to {name}"


def op_remove_term(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    roots = [
        n
        for n in entry_nodes(an)
        if isinstance(n, ast.BinOp)
        and isinstance(n.op, ast.Add | ast.Sub)
        and not (isinstance(p := an.parents.get(n), ast.BinOp) and isinstance(p.op, ast.Add | ast.Sub))
    ]
    cands = []
    for r in roots:
        terms: list[tuple[int, ast.expr]] = []
        flatten(r, 1, terms)
        removable = [
            k for k, (_, e) in enumerate(terms) if any(env.comp_of(an, x) is not None for x in ast.walk(e))
        ]
        if len(terms) >= 2 and removable:
            cands.append((r, terms, removable))
    if not cands:
        return None
    root, terms, removable = rng.choice(cands)
    k = rng.choice(removable)
    dropped = terms.pop(k)[1]
    acc = rebuild(terms)
    if not replace_child(an.parents[root], root, acc):
        return None
    return env.render(an), f"line {root.lineno}: removed the term {ast.unparse(dropped)}"
