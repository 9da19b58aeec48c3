"""A parsed program with what the generators need to know about it."""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable
from dataclasses import dataclass

from scriptrl.generators.ast_numbers import Site, is_number, is_signed_number, numeric_sites
from scriptrl.generators.ast_render import is_docstring
from scriptrl.generators.ast_tree import entry_function, parent_map, walk_function
from scriptrl.program.parsing import parse_python


@dataclass
class Analysis:
    """A parsed program with what the generators need to know about it."""

    source: str
    tree: ast.Module
    parents: dict[ast.AST, ast.AST]
    entry: ast.FunctionDef | None
    obs: str | None  # name of the observation parameter
    comp_vars: dict[str, int]  # variable -> component position (in the layout's component list)
    comp_reads: set[ast.AST]  # obs[k] nodes that define a component variable
    sites: list[Site]

    @classmethod
    def of(
        cls, source: str, discrete_obs: bool = False, index_to_pos: dict[int, int] | None = None
    ) -> Analysis:
        tree = parse_python(source)
        parents = parent_map(tree)
        entry, obs = entry_function(tree)
        comp_vars: dict[str, int] = {}
        comp_reads: set[ast.AST] = set()
        index_to_pos = index_to_pos or {}
        if entry is not None and obs:
            for node in walk_function(entry):
                if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                    continue
                target, value = node.targets[0], node.value
                if isinstance(target, ast.Name):
                    k = _obs_index(value, obs)
                    if k is not None and k in index_to_pos:
                        comp_vars.setdefault(target.id, index_to_pos[k])
                        comp_reads.add(value)
                    elif discrete_obs and isinstance(value, ast.Name) and value.id == obs:
                        comp_vars.setdefault(target.id, 0)
                        comp_reads.add(value)
                elif isinstance(target, ast.Tuple) and isinstance(value, ast.Name) and value.id == obs:
                    for k, elt in enumerate(target.elts):
                        if isinstance(elt, ast.Name) and k in index_to_pos:
                            comp_vars.setdefault(elt.id, index_to_pos[k])
        return cls(source, tree, parents, entry, obs, comp_vars, comp_reads, numeric_sites(tree, parents))

    def comp_of(self, node: ast.AST, discrete_obs: bool = False, index_to_pos: dict[int, int] | None = None):
        """Component position read by ``node`` (a component variable or ``obs[k]``), else None."""
        if isinstance(node, ast.Name):
            if node.id in self.comp_vars:
                return self.comp_vars[node.id]
            if discrete_obs and node.id == self.obs:
                return 0
            return None
        k = _obs_index(node, self.obs)
        if k is not None and index_to_pos is not None:
            return index_to_pos.get(k)
        return None

    def returns(self) -> list[ast.Return]:
        if self.entry is None:
            return []
        return [n for n in walk_function(self.entry) if isinstance(n, ast.Return) and n.value is not None]


def _obs_index(node: ast.AST, obs: str | None) -> int | None:
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == obs
        and isinstance(node.slice, ast.Constant)
        and type(node.slice.value) is int
    ):
        return node.slice.value
    return None


def skeleton(tree: ast.AST) -> str:
    """The tree's shape with every number replaced by 0 and docstrings removed."""
    t = copy.deepcopy(tree)

    class Zero(ast.NodeTransformer):
        def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
            if is_signed_number(node):
                return ast.Constant(value=0)
            return self.generic_visit(node)

        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            return ast.Constant(value=0) if is_number(node) else node

    t = Zero().visit(t)
    for node in ast.walk(t):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and is_docstring(body[0]):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(t, annotate_fields=False)


def map_sites(sites: list[Site], pred: Callable[[Site], bool]) -> list[int]:
    return [i for i, s in enumerate(sites) if pred(s)]
