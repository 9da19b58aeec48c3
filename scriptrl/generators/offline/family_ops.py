"""Mutations that belong to the program families: add a nonlinear feature, grow a tree leaf.

Each takes (env, analysis, temperature, rng) and returns (child source, note) or None.
"""

from __future__ import annotations

import ast
import random

from scriptrl.generators import astutil as au
from scriptrl.generators.offline.controllers import feature, oblique_test
from scriptrl.generators.offline.env_view import EnvView, sig
from scriptrl.generators.offline.tree_edit import block_of, entry_nodes, flatten, rebuild


def _signal_assigns(env: EnvView, an: au.Analysis) -> list[ast.Assign]:
    """Assignments of a number the action is made from (action variables, scores, ``u``)."""
    lay = env.layout
    names = set(lay.action_vars) | {"u", "score"}
    return [
        n
        for n in entry_nodes(an)
        if isinstance(n, ast.Assign)
        and len(n.targets) == 1
        and isinstance(n.targets[0], ast.Name)
        and n.targets[0].id in names
        and not (isinstance(n.value, ast.Constant) and type(n.value.value) is int)
    ]


def op_add_feature(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    if not env.layout.components or env.obs_is_component:
        return None
    cands = _signal_assigns(env, an)
    if not cands:
        return None
    node = rng.choice(cands)
    name = node.targets[0].id  # type: ignore[attr-defined]
    half = 1.0
    lay = env.layout
    if lay.action_kind == "box" and name in lay.action_vars:
        half = env.action_scale(lay.action_vars.index(name))
    text, size = feature(env, rng)
    w = rng.gauss(0.0, 0.3 + 0.5 * t) * half / max(size, 1e-6)
    term = ast.parse(f"{sig(w)} * ({text})", mode="eval").body
    terms: list[tuple[int, ast.expr]] = []
    flatten(node.value, 1, terms)
    node.value = rebuild([*terms, (1, term)])
    return env.render(an), f"line {node.lineno}: added the feature {ast.unparse(term)} to {name}"


def _depth(an: au.Analysis, node: ast.AST) -> int:
    d, p = 0, an.parents.get(node)
    while p is not None and p is not an.entry:
        d += isinstance(p, ast.If)
        p = an.parents.get(p)
    return d


def op_grow_tree(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    """Split a leaf ``return a`` of a discrete tree into ``if w . obs + b > 0: return a else: return b``."""
    lay = env.layout
    if lay.action_kind != "discrete" or not lay.components or env.obs_is_component or an.entry is None:
        return None
    leaves = [
        r
        for r in an.returns()
        if isinstance(r.value, ast.Constant) and r.value.value in lay.actions and _depth(an, r) in (1, 2)
    ]
    if not leaves:
        return None
    leaf = rng.choice(leaves)
    where = block_of(an, leaf)
    if where is None:
        return None
    block, i = where
    other = rng.choice([a for a in lay.actions if a != leaf.value.value])  # type: ignore[union-attr]
    test = ast.parse(oblique_test(env, rng, t), mode="eval").body
    new = ast.If(test=test, body=[leaf], orelse=[ast.Return(value=ast.Constant(value=other))])
    if rng.random() < 0.5:
        new.body, new.orelse = new.orelse, new.body
    block[i] = new
    return env.render(an), f"line {leaf.lineno}: split the leaf into `if {ast.unparse(test)}`"
