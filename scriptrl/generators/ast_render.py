"""Rendering a whole syntax tree as readable source.

``render`` tidies signs (``x - 0.5 * y`` rather than ``x + -0.5 * y``), wraps long tables,
and adds a comment to every line that reads an observation component
(``pole_angle = obs[2]  # rad, typical ...``). It writes every line afresh: edits of an
existing program go through ``ast_splice.render_edit``, which keeps the original text.
"""

from __future__ import annotations

import ast
import copy
import math
import re

from scriptrl.generators.ast_numbers import is_number, is_signed_number, signed_value


class _TidySigns(ast.NodeTransformer):
    """``x + -0.5 * y`` -> ``x - 0.5 * y``; negative Constants -> unary minus."""

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        v = node.value
        if (type(v) is int or type(v) is float) and v < 0:
            return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=-v))
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        o = node.operand
        if (
            isinstance(node.op, ast.USub)
            and isinstance(o, ast.BinOp)
            and isinstance(o.op, ast.Mult | ast.Div)
        ):
            if is_number(o.left):  # -(0.5 * x) -> -0.5 * x
                return ast.BinOp(left=ast.UnaryOp(op=ast.USub(), operand=o.left), op=o.op, right=o.right)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Add | ast.Sub):
            return node
        r = node.right
        neg = _negated(r)
        if neg is not None:
            node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            node.right = neg
        return node


def _negated(r: ast.expr) -> ast.expr | None:
    if isinstance(r, ast.UnaryOp) and isinstance(r.op, ast.USub) and is_number(r.operand):
        return r.operand
    if isinstance(r, ast.BinOp) and isinstance(r.op, ast.Mult | ast.Div):
        inner = _negated(r.left)
        if inner is not None and not isinstance(r.left, ast.BinOp):
            return ast.BinOp(left=inner, op=r.op, right=r.right)
    return None


def _wrapped_list(name: str, elts: list[ast.expr]) -> str | None:
    """A long list of numbers as several lines (rows of a square grid when it is one)."""
    if len(elts) < 17 or not all(is_signed_number(e) for e in elts):
        return None
    texts = [ast.unparse(e) for e in elts]
    ints = all(type(signed_value(e)) is int for e in elts)
    root = math.isqrt(len(elts))
    if root * root == len(elts) and root <= 32:
        per = root
    else:
        per = 16 if ints else 6
    rows = []
    for i in range(0, len(texts), per):
        row = ", ".join(texts[i : i + per]) + ","
        last = min(i + per, len(texts)) - 1
        rows.append(f"    {row}  # {i}-{last}" if ints else f"    {row}")
    return f"{name} = [\n" + "\n".join(rows) + "\n]"


_ASSIGN_LINE = re.compile(r"^(\s*)([A-Za-z_]\w*) = (.+)$")


def tidy_signs(node: ast.AST) -> ast.AST:
    """A tidied copy of ``node``: ``x + -0.5 * y`` becomes ``x - 0.5 * y``."""
    tidied = _TidySigns().visit(copy.deepcopy(node))
    ast.fix_missing_locations(tidied)
    return tidied


def _statement_text(stmt: ast.stmt) -> str:
    """One (tidied) statement as text, a long number table wrapped over several lines."""
    if (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and isinstance(stmt.value, ast.List)
    ):
        text = _wrapped_list(stmt.targets[0].id, stmt.value.elts)
        if text is not None:
            return text
    return ast.unparse(stmt)


def finish_lines(source: str, comments: dict[str, tuple[str, str]] | None) -> str:
    """Long sums wrapped, and a comment added to each line that reads a component."""
    source = "\n".join(_wrap_long(line) for line in source.split("\n"))
    if not comments:
        return source
    lines = []
    for line in source.split("\n"):
        m = _ASSIGN_LINE.match(line)
        if m and m.group(3) in comments and "#" not in line:
            name, comment = comments[m.group(3)]
            if name != m.group(2):
                comment = f"{name}: {comment}"
            line = f"{line}  # {comment}"
        lines.append(line)
    return "\n".join(lines)


def fresh_statement(stmt: ast.stmt, comments: dict[str, tuple[str, str]] | None = None) -> str:
    """A statement written afresh as ``render`` would write it, without indentation."""
    return finish_lines(_statement_text(tidy_signs(stmt)), comments)  # type: ignore[arg-type]


def render(tree: ast.Module, comments: dict[str, tuple[str, str]] | None = None) -> str:
    """Readable source for a tree: tidy signs, wrapped tables, comments on component reads.

    ``comments`` maps a read expression as unparsed (``obs[2]``) to (component name,
    comment text); a line ``name = obs[2]`` gets ``  # comment`` appended.
    """
    tree = tidy_signs(tree)  # type: ignore[assignment]
    out: list[str] = []
    prev: ast.stmt | None = None
    for stmt in tree.body:
        if prev is not None:
            big = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            if isinstance(stmt, big) or isinstance(prev, big):
                out.append("\n\n")
            elif is_docstring(prev) or isinstance(prev, ast.Import | ast.ImportFrom) != isinstance(
                stmt, ast.Import | ast.ImportFrom
            ):
                out.append("\n")
        out.append(_statement_text(stmt) + "\n")
        prev = stmt
    return finish_lines("".join(out), comments)


_WRAP_AT = 100


def _wrap_long(line: str, width: int = 88) -> str:
    """Break ``name = a + b - c ...`` longer than _WRAP_AT at top-level + and - into a parenthesised block."""
    m = _ASSIGN_LINE.match(line)
    if len(line) <= _WRAP_AT or not m or "'" in line or '"' in line or "#" in line:
        return line
    indent, name, expr = m.groups()
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in "+-" and expr[i - 1 : i] == " " and expr[i + 1 : i + 2] == " ":
            pieces.append(expr[start:i].strip())
            start = i
    pieces.append(expr[start:].strip())
    if len(pieces) < 2:
        return line
    inner = indent + "    "
    rows, cur = [], ""
    for p in pieces:
        if cur and len(inner) + len(cur) + 1 + len(p) > width:
            rows.append(cur)
            cur = p
        else:
            cur = f"{cur} {p}" if cur else p
    rows.append(cur)
    return f"{indent}{name} = (\n" + "\n".join(inner + r for r in rows) + f"\n{indent})"


def is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )
