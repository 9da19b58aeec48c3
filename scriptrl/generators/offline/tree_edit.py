"""Syntax-tree helpers the mutation operators and crossover share."""

from __future__ import annotations

import ast

from scriptrl.generators import astutil as au
from scriptrl.generators.offline.env_view import EnvView
from scriptrl.program.parsing import parse_python


def entry_nodes(an: au.Analysis) -> list[ast.AST]:
    return list(au.walk_function(an.entry)) if an.entry is not None else []


def comp_ref(env: EnvView, an: au.Analysis, pos: int) -> ast.expr:
    names = sorted(v for v, p in an.comp_vars.items() if p == pos)
    comp = env.layout.components[pos]
    if comp.var in names:
        return ast.Name(id=comp.var, ctx=ast.Load())
    if names:
        return ast.Name(id=names[0], ctx=ast.Load())
    return parse_python(comp.read(an.obs or "obs"), mode="eval").body


def block_of(an: au.Analysis, node: ast.stmt) -> tuple[list[ast.stmt], int] | None:
    p = an.parents.get(node)
    for field in ("body", "orelse", "finalbody"):
        block = getattr(p, field, None)
        if isinstance(block, list):
            for i, s in enumerate(block):
                if s is node:
                    return block, i
    return None


def replace_child(parent: ast.AST, old: ast.AST, new: ast.AST) -> bool:
    for field, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, field, new)
            return True
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    value[i] = new
                    return True
    return False


def flatten(node: ast.expr, sign: int, out: list[tuple[int, ast.expr]]) -> None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        flatten(node.left, sign, out)
        flatten(node.right, sign if isinstance(node.op, ast.Add) else -sign, out)
    else:
        out.append((sign, node))


def negate(e: ast.expr) -> ast.expr:
    if au.is_signed_number(e):
        v = au.signed_value(e)
        return au.num_node(-v, type(v) is int, 12)
    if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Mult | ast.Div) and au.is_signed_number(e.left):
        return ast.BinOp(left=negate(e.left), op=e.op, right=e.right)
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub):
        return e.operand
    return ast.UnaryOp(op=ast.USub(), operand=e)


def rebuild(terms: list[tuple[int, ast.expr]]) -> ast.expr:
    """A sum from signed terms, constants last: ``a * x - b * y + c``."""
    terms = [t for t in terms if not au.is_signed_number(t[1])] + [
        t for t in terms if au.is_signed_number(t[1])
    ]
    sign, first = terms[0]
    acc: ast.expr = first if sign > 0 else negate(first)
    for s, e in terms[1:]:
        acc = ast.BinOp(left=acc, op=ast.Add() if s > 0 else ast.Sub(), right=e)
    return acc


def reads_component(an: au.Analysis, s: ast.stmt) -> bool:
    return isinstance(s, ast.Assign) and (
        s.value in an.comp_reads or (isinstance(s.value, ast.Name) and s.value.id == an.obs)
    )


def names_ok(stmt: ast.AST, bound: set[str]) -> bool:
    loaded = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    local = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    local |= {a.arg for a in ast.walk(stmt) if isinstance(a, ast.arg)}
    return loaded <= bound | local


def short(node: ast.AST, limit: int = 70) -> str:
    text = ast.unparse(node).split("\n")[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def action_sites(env: EnvView, an: au.Analysis) -> list[int]:
    acts = env.layout.actions
    if env.layout.action_kind != "discrete" or len(acts) < 2:
        return []
    return [i for i, s in enumerate(an.sites) if s.role == "action" and s.value in acts]


def table_groups(env: EnvView, an: au.Analysis) -> list[list[int]]:
    """Site indices of each lookup table whose entries are all valid actions."""
    if env.layout.action_kind != "discrete" or len(env.layout.actions) < 2:
        return []
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(an.sites):
        if s.role == "table" and s.parent is not None:
            groups.setdefault(id(s.parent), []).append(i)
    acts = set(env.layout.actions)
    return [g for g in groups.values() if len(g) >= 4 and all(an.sites[i].value in acts for i in g)]
