"""Moving around a policy's syntax tree: parents, the entry point, one function's own nodes."""

from __future__ import annotations

import ast
from collections.abc import Iterable


def parent_map(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    return parents


def entry_function(tree: ast.Module) -> tuple[ast.FunctionDef | None, str | None]:
    """The function that maps an observation to an action, and its observation parameter."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "policy":
            args = [*node.args.posonlyargs, *node.args.args]
            return node, (args[0].arg if args else None)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Policy":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "act":
                    args = [*item.args.posonlyargs, *item.args.args]
                    return item, (args[1].arg if len(args) > 1 else None)
    return None, None


def walk_function(fn: ast.AST | None) -> Iterable[ast.AST]:
    """Nodes of a function body, not descending into nested functions, lambdas or classes."""
    stack = list(reversed(getattr(fn, "body", [])))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
