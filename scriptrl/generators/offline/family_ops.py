"""Mutations that belong to the program families: add a nonlinear feature, grow a tree leaf,
flip or rescale one law of a switching controller.

Each takes (env, analysis, temperature, rng) and returns (child source, note) or None.
"""

from __future__ import annotations

import ast
import math
import random

from scriptrl.generators import astutil as au
from scriptrl.generators.offline.controllers import feature, oblique_test
from scriptrl.generators.offline.env_view import EnvView, sig
from scriptrl.generators.offline.switching import find_switch, lead_constant, pair_of_term
from scriptrl.generators.offline.tree_edit import block_of, entry_nodes, flatten, rebuild, replace_child
from scriptrl.program.parsing import parse_python


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
    term = parse_python(f"{sig(w)} * ({text})", mode="eval").body
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
    test = parse_python(oblique_test(env, rng, t), mode="eval").body
    new = ast.If(test=test, body=[leaf], orelse=[ast.Return(value=ast.Constant(value=other))])
    if rng.random() < 0.5:
        new.body, new.orelse = new.orelse, new.body
    block[i] = new
    return env.render(an), f"line {leaf.lineno}: split the leaf into `if {ast.unparse(test)}`"


def _law_assigns(env: EnvView, an: au.Analysis, rng: random.Random) -> tuple[str, ast.Assign] | None:
    """A random assignment in one branch of the program's switch, with the branch's name."""
    switch = find_switch(env, an)
    if switch is None:
        return None
    branch, block = rng.choice((("hold", switch.body), ("pump", switch.orelse)))
    return branch, rng.choice(block)  # type: ignore[return-value]


def _law_terms(env: EnvView, an: au.Analysis, rng: random.Random):
    """One law's assignment (chosen as ``_law_assigns`` does), its signed terms, and the rate
    pairs those terms read: what both law operators edit. None when there is no law."""
    found = _law_assigns(env, an, rng)
    if found is None:
        return None
    branch, node = found
    terms: list[tuple[int, ast.expr]] = []
    flatten(node.value, 1, terms)
    pairs = sorted({p for _, e in terms if (p := pair_of_term(env, an, e)) is not None})
    return branch, node, terms, pairs


def op_flip_law(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    """Flip which side of the threshold holds, or the sign of one rate pair's terms in one law
    (the direction an actuator moves that pair is a guess each start makes)."""
    switch = find_switch(env, an)
    if switch is None:
        return None
    test = switch.test
    if (
        rng.random() < 0.3
        and isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and type(test.ops[0]) in _SIDE
    ):
        test.ops = [_SIDE[type(test.ops[0])]()]
        return env.render(an), f"line {switch.lineno}: the other side of the threshold now holds"
    found = _law_terms(env, an, rng)
    if found is None or not found[3]:
        return None
    branch, node, terms, pairs = found
    k = rng.choice(pairs)
    node.value = rebuild([(-s if pair_of_term(env, an, e) == k else s, e) for s, e in terms])
    name = "/".join(env.layout.components[p].var for p in env.layout.rate_pairs[k])
    return env.render(an), f"line {node.lineno}: flipped the sign of the {name} terms of the {branch} law"


def op_scale_law(env: EnvView, an: au.Analysis, t: float, rng: random.Random):
    """Multiply the gains of one law (all its terms, or one rate pair's) by one factor: a
    stiffer or softer hold, a harder or gentler pump, keeping the law's shape."""
    found = _law_terms(env, an, rng)
    if found is None:
        return None
    branch, node, terms, pairs = found
    only = rng.choice(pairs) if pairs and rng.random() < 0.5 else None
    factor = math.exp(rng.gauss(0.0, 0.3 + 0.4 * t))
    changed = 0
    for _, e in terms:
        lead = lead_constant(e)
        if lead is None or (only is not None and pair_of_term(env, an, e) != only):
            continue
        parent = an.parents.get(lead)
        if parent is None:
            continue
        replace_child(parent, lead, au.num_node(au.signed_value(lead) * factor, False, 3))
        changed += 1
    if not changed:
        return None
    return env.render(an), f"line {node.lineno}: scaled the gains of the {branch} law by {factor:.2f}"


_SIDE = {ast.Gt: ast.Lt, ast.Lt: ast.Gt, ast.GtE: ast.LtE, ast.LtE: ast.GtE}
