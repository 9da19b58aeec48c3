"""Numbers in a policy program: what each literal is for, and writing new values in place.

Numeric *sites* are the numbers a program contains, each with a role (see
``numeric_sites``); the tuner and the mutator agree on which ones are tunable. New values
are written as *span edits* of the original text (``write_numbers``), so comments and
layout survive.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scriptrl.generators.ast_live import inert_nodes
from scriptrl.generators.ast_text import Edit, SourceText, apply_edits
from scriptrl.generators.ast_tree import parent_map

if TYPE_CHECKING:
    from scriptrl.generators.ast_analysis import Analysis

_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def is_number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def is_signed_number(node: ast.AST) -> bool:
    """A number literal, or a negated one (``-0.5`` parses as USub applied to 0.5)."""
    return is_number(node) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and is_number(node.operand)
    )


def signed_value(node: ast.AST) -> int | float:
    if isinstance(node, ast.UnaryOp):
        return -node.operand.value  # type: ignore[attr-defined]
    return node.value  # type: ignore[attr-defined]


def round_sig(v: float, digits: int = 4) -> float:
    r = float(f"{v:.{digits}g}")
    return 0.0 if r == 0 else r


def fmt_number(v: float, is_int: bool, digits: int = 4) -> str:
    """Python text for a number: ints stay ints, floats keep ``digits`` significant digits."""
    if is_int:
        return str(int(round(v)))
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {v}")
    return repr(round_sig(v, digits))


def num_node(v: float, is_int: bool = False, digits: int = 4) -> ast.expr:
    """AST for a number; negatives become ``-(positive)`` so unparsing never needs parentheses."""
    value: int | float = int(round(v)) if is_int else round_sig(v, digits)
    if value < 0:
        return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=-value))
    return ast.Constant(value=value)


def _returned_names(tree: ast.AST) -> set[str]:
    return {n.value.id for n in ast.walk(tree) if isinstance(n, ast.Return) and isinstance(n.value, ast.Name)}


@dataclass
class Site:
    """One number literal in a program."""

    node: ast.expr  # the Constant, or the UnaryOp(USub, Constant) around it
    value: int | float  # with its sign
    is_int: bool
    role: str  # "tunable" | "action" | "table" | "fixed" | "inert"
    parent: ast.AST | None

    @property
    def line(self) -> int:
        return getattr(self.node, "lineno", 0)


def _is_clip(node: ast.AST) -> bool:
    """``min(max(x, lo), hi)``, ``max(min(x, hi), lo)`` or ``np.clip(x, lo, hi)``."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    if isinstance(f, ast.Attribute) and f.attr == "clip" and len(node.args) == 3:
        return True
    if isinstance(f, ast.Name) and f.id in ("min", "max") and len(node.args) == 2:
        other = "max" if f.id == "min" else "min"
        return any(
            isinstance(a, ast.Call)
            and isinstance(a.func, ast.Name)
            and a.func.id == other
            and len(a.args) == 2
            for a in node.args
        )
    return False


def numeric_sites(tree: ast.AST, parents: dict[ast.AST, ast.AST] | None = None) -> list[Site]:
    """Every int/float literal (bools excluded) in AST order, with its role.

    Roles, which decide what tuning may touch:

    * ``fixed``: indices (anything inside ``x[...]``), ``range(...)`` arguments, clip bounds
      (``min(max(x, lo), hi)``, ``np.clip(x, lo, hi)``: they are the action bounds), numbers
      in f-strings, and ints that are not arithmetic operands or comparison operands
      (e.g. ``round(x, 2)``, an exponent, a divisor of ``//`` or ``%``, a repeat count
      as in ``[0.0] * 4``).
    * ``action``: an int that is returned (``return 1``, ``return 1 if s > 0 else 0``)
      or assigned to a name the program returns (``action = 2 ... return action``).
    * ``table``: an int element of a list/tuple literal made only of ints (lookup tables).
    * ``tunable``: every other float, and ints that are operands of + - * / or of a comparison.
    * ``inert``: any of the above but ``fixed`` where it cannot change an action (code that
      never runs or whose result nothing reads, a test whose branches do the same: see
      ``ast_live``). Neither tuned nor mutated.
    """
    parents = parents if parents is not None else parent_map(tree)
    returned = _returned_names(tree)
    weights = _weight_lists(tree, parents)
    out: list[Site] = []

    def visit(node: ast.AST, fixed: bool) -> None:
        if isinstance(node, ast.JoinedStr):
            return
        if is_signed_number(node):
            out.append(_classify(node, fixed, parents, returned, weights))  # type: ignore[arg-type]
            return
        if isinstance(node, ast.Subscript):
            visit(node.value, fixed)
            visit(node.slice, True)
            return
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            for child in ast.iter_child_nodes(node):
                visit(child, True)
            return
        if _is_clip(node):
            call: ast.Call = node  # type: ignore[assignment]
            visit(call.func, fixed)
            for arg in call.args:
                if is_signed_number(arg):
                    visit(arg, True)
                elif _is_clip_inner(arg, call):
                    inner: ast.Call = arg  # type: ignore[assignment]
                    for a in inner.args:
                        visit(a, True if is_signed_number(a) else fixed)
                else:
                    visit(arg, fixed)
            for kw in call.keywords:
                visit(kw, fixed)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, fixed)

    visit(tree, False)
    if isinstance(tree, ast.Module):
        _mark_inert(out, inert_nodes(tree), parents)
    return out


def _classify(
    node: ast.expr, fixed: bool, parents: dict[ast.AST, ast.AST], returned: set[str], weights: set[int]
) -> Site:
    """The role of one number literal (see ``numeric_sites``)."""
    parent = parents.get(node)
    value = signed_value(node)
    is_int = type(value) is int
    if fixed:
        return Site(node, value, is_int, "fixed", parent)
    if not is_int:
        return Site(node, value, False, "tunable", parent)
    if _in_action_position(node, parents, returned):
        return Site(node, value, True, "action", parent)
    if isinstance(parent, ast.List | ast.Tuple) and all(
        is_signed_number(e) and type(signed_value(e)) is int for e in parent.elts
    ):
        if id(parent) in weights:  # ``weights = [1, 1, 1, 1]`` then ``np.dot(weights, obs)``
            return Site(node, value, False, "tunable", parent)
        return Site(node, value, True, "table", parent)
    if isinstance(parent, ast.Compare):
        return Site(node, value, True, "tunable", parent)
    if isinstance(parent, ast.BinOp):
        other = parent.right if parent.left is node else parent.left
        if isinstance(parent.op, _ARITH):
            repeat = (
                isinstance(parent.op, ast.Mult)
                and isinstance(other, ast.List | ast.Tuple | ast.ListComp | ast.JoinedStr)
                or (isinstance(other, ast.Constant) and isinstance(other.value, str))
            )
            return Site(node, value, True, "fixed" if repeat else "tunable", parent)
        if isinstance(parent.op, ast.Pow | ast.FloorDiv | ast.Mod) and parent.left is node:
            return Site(node, value, True, "tunable", parent)
    return Site(node, value, True, "fixed", parent)


def _mark_inert(sites: list[Site], inert: set[ast.AST], parents: dict[ast.AST, ast.AST]) -> None:
    """Sites in code that cannot change an action (``ast_live``) get the role ``inert``."""
    if not inert:
        return
    for site in sites:
        node: ast.AST | None = site.node
        while node is not None and node not in inert:
            node = parents.get(node)
        if node is not None and site.role != "fixed":
            site.role = "inert"


def _weight_lists(tree: ast.AST, parents: dict[ast.AST, ast.AST]) -> set[int]:
    """Ids of int-only list/tuple literals that are weights, not lookup tables: bound to a
    name that is only ever combined arithmetically (``np.dot(w, obs)``, ``zip(w, obs)``,
    ``w[i] * obs[i]``), never indexed to pick a value out (``TABLE[state]``). A model that
    writes ``[1, 1, 1, 1]`` for weights means numbers to tune, not actions."""
    bound: dict[str, ast.AST | None] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.List | ast.Tuple)
            and len(node.value.elts) > 1
            and all(is_signed_number(e) and type(signed_value(e)) is int for e in node.value.elts)
        ):
            name = node.targets[0].id
            bound[name] = None if name in bound else node.value  # bound twice: leave it alone
    out: set[int] = set()
    for name, literal in bound.items():
        uses = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
        ]
        if literal is None or not uses:
            continue
        weighted = True
        for use in uses:
            p = parents.get(use)
            if isinstance(p, ast.Subscript) and p.value is use:
                q = parents.get(p)
                weighted = isinstance(q, ast.BinOp) and isinstance(q.op, _ARITH)
            elif isinstance(p, ast.Return) or (isinstance(p, ast.Assign) and p.value is use):
                weighted = False
            if not weighted:
                break
        if weighted:
            out.add(id(literal))
    return out


def _is_clip_inner(arg: ast.AST, outer: ast.Call) -> bool:
    if not (
        isinstance(outer.func, ast.Name) and isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name)
    ):
        return False
    return {outer.func.id, arg.func.id} == {"min", "max"} and len(arg.args) == 2


def _in_action_position(node: ast.AST, parents: dict, returned: set[str]) -> bool:
    cur, p = node, parents.get(node)
    while isinstance(p, ast.IfExp) and cur is not p.test:
        cur, p = p, parents.get(p)
    if isinstance(p, ast.Return) and p.value is cur:
        return True
    if isinstance(p, ast.Assign) and p.value is cur and len(p.targets) == 1:
        t = p.targets[0]
        return isinstance(t, ast.Name) and t.id in returned
    return False


def _needs_parens(node: ast.AST, parent: ast.AST | None) -> bool:
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Pow) and parent.left is node:
        return True
    if isinstance(parent, ast.Attribute | ast.Subscript) and parent.value is node:
        return True
    return isinstance(parent, ast.Call) and parent.func is node


def number_edits(st: SourceText, site: Site, value: float, parents: dict[ast.AST, ast.AST]) -> list[Edit]:
    """Edits that write ``value`` at ``site``, flipping a neighbouring + / - instead of writing ``- -x``."""
    rounded = float(fmt_number(value, site.is_int))
    node = site.node
    chain: ast.AST = node
    p = parents.get(node)
    if isinstance(p, ast.BinOp) and isinstance(p.op, ast.Mult) and p.left is node:
        chain = p
    gp = parents.get(chain)
    if isinstance(gp, ast.BinOp) and isinstance(gp.op, ast.Add | ast.Sub) and gp.right is chain:
        a = st.offset(gp.left.end_lineno, gp.left.end_col_offset)  # type: ignore[arg-type]
        b = st.span(chain)[0]
        gap = st.source[a:b]
        sym = "+" if isinstance(gp.op, ast.Add) else "-"
        if gap.count(sym) == 1 and "#" not in gap and not gap.replace(sym, "").strip():
            edits = [(*st.span(node), fmt_number(abs(rounded), site.is_int))]
            if rounded < 0:
                edits.append((a, b, gap.replace(sym, "-" if sym == "+" else "+")))
            return edits
    text = fmt_number(rounded, site.is_int)
    if text.startswith("-") and _needs_parens(node, p):
        text = f"({text})"
    return [(*st.span(node), text)]


def write_numbers(source: str, an: Analysis, changes: Mapping[int, float]) -> str:
    """Rewrite the sites ``an.sites[i]`` for i in ``changes`` with new values, keeping all other text."""
    st = SourceText(source)
    edits: list[Edit] = []
    for i, v in changes.items():
        edits.extend(number_edits(st, an.sites[i], v, an.parents))
    return apply_edits(source, edits)
