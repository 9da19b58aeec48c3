"""A program's shape: its code with every number and sign replaced, so variants that differ
only in their constants (a tuning generation) are recognised as one program."""

from __future__ import annotations

import ast
import hashlib

from scriptrl.program.parsing import parse_python


class _Numbers(ast.NodeTransformer):
    """Every numeric literal (and its sign) becomes 0, every ``-`` between terms a ``+`` (a
    tuned weight that changes sign is written ``- 0.3 * x`` where it was ``+ 0.3 * x``);
    docstrings go."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        if isinstance(node.op, ast.Sub):
            node.op = ast.Add()
        return self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if isinstance(node.op, ast.USub | ast.UAdd) and _is_number(node.operand):
            return ast.Constant(value=0)
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.Constant(value=0) if _is_number(node) else node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        return super().generic_visit(node)


def _is_number(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Constant)
        and type(node.value) in (int, float, complex)  # not bool: True/False are structure
    )


def shape_hash(source: str) -> str:
    """Equal for programs whose code differs only in numbers, signs, comments, docstrings and layout;
    the source's own hash when it does not parse (then it shares its shape with nothing)."""
    try:
        tree = parse_python(source)
    except SyntaxError:
        return "unparsed:" + hashlib.sha256(source.encode()).hexdigest()
    tree = _Numbers().visit(tree)
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()
