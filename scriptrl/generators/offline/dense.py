"""The dense linear form of a program: every reading in every linear score it computes.

Why: CMA-ES moves constants, never structure, so a sparse linear score (an argmax whose action
scores each read a few readings) can never learn to use a reading it lacks. Measured on an
8-reading, 4-action task (``benchmarks/RESULTS.md``, ``../shared/BENCHMARKS.md``): CMA-ES on
the full weight matrix with a population of about 56 and fresh episodes per generation goes
far, while tuning the sparse leaders the structural search finds does not.

The dense form keeps the program as it is and adds ``0.0 * reading`` for every reading a
linear score leaves out, so it acts exactly as the program does (the same returns on every
episode) and its tuning starts where the program stands. A *linear score* is an assignment
``name = sum of terms`` with at least one ``number * reading`` term; other terms (``w *
abs(vx)``, a bias, another variable) are kept as they are. The reading terms are put in the
layout's order, so programs that differ only in which readings their scores use have one
dense form (up to the signs of their weights, which ``dense_key`` ignores).
"""

from __future__ import annotations

import ast

from scriptrl.generators import astutil as au
from scriptrl.generators.base import GenContext
from scriptrl.generators.layout import layout_for
from scriptrl.generators.offline.env_view import EnvView
from scriptrl.generators.offline.tree_edit import block_of, comp_ref, entry_nodes, flatten, rebuild
from scriptrl.generators.tuning import extract_constants
from scriptrl.program.parsing import parse_python

#: Most readings a dense form writes into each score (one weight per reading per score).
MAX_DENSE_READINGS = 12
#: Most tunable constants a dense form may have: all of them are tuned (full-covariance CMA-ES).
MAX_DENSE_CONSTANTS = 64


def reading_of(env: EnvView, an: au.Analysis, term: ast.expr) -> int | None:
    """The reading a ``number * reading`` (or ``reading * number``, ``reading / number``) term
    weighs, else None."""
    if not (isinstance(term, ast.BinOp) and isinstance(term.op, ast.Mult | ast.Div)):
        return None
    if au.is_signed_number(term.left) and isinstance(term.op, ast.Mult):
        return env.comp_of(an, term.right)
    if au.is_signed_number(term.right):
        return env.comp_of(an, term.left)
    return None


def linear_scores(env: EnvView, an: au.Analysis) -> list[tuple[ast.Assign, list[tuple[int, ast.expr]]]]:
    """Each linear score of the program with its signed terms (see the module docstring)."""
    out = []
    for node in entry_nodes(an):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        if not isinstance(node.targets[0], ast.Name):
            continue
        if node.targets[0].id in an.comp_vars or node.value in an.comp_reads:
            continue
        terms: list[tuple[int, ast.expr]] = []
        flatten(node.value, 1, terms)
        if any(reading_of(env, an, e) is not None for _, e in terms):
            out.append((node, terms))
    return out


def densify(env: EnvView, source: str) -> str | None:
    """``source`` with every linear score reading every reading (missing ones weighted 0.0);
    None when it has no linear score, too many readings, or too many constants to tune all."""
    lay = env.layout
    n = len(lay.components)
    if env.discrete_obs or not lay.named or not 0 < n <= MAX_DENSE_READINGS:
        return None
    try:
        an = env.analyze(source)
    except (SyntaxError, ValueError):
        return None
    scores = linear_scores(env, an)
    if not scores:
        return None
    added = 0
    for node, terms in scores:
        by_reading: dict[int, list[tuple[int, ast.expr]]] = {p: [] for p in range(n)}
        others = []
        for sign, e in terms:
            p = reading_of(env, an, e)
            if p is None or p >= n:
                others.append((sign, e))
            else:
                by_reading[p].append((sign, e))
        for p, found in by_reading.items():
            if not found:
                added += 1
                zero = ast.BinOp(left=ast.Constant(value=0.0), op=ast.Mult(), right=comp_ref(env, an, p))
                found.append((1, zero))
        value = rebuild([t for p in range(n) for t in by_reading[p]] + others)
        _rewrite(an, node, value)
    out = env.render(an) if added else source  # a dense program is its own dense form
    if au.problem(out) is not None or len(extract_constants(out)) > MAX_DENSE_CONSTANTS:
        return None
    return out


def _rewrite(an: au.Analysis, node: ast.Assign, value: ast.expr) -> None:
    """Put a fresh ``name = value`` statement (no source positions) in place of ``node``, so
    the renderer writes the whole sum afresh instead of splicing pieces of the old one."""
    text = f"{ast.unparse(node.targets[0])} = {ast.unparse(value)}"
    fresh = parse_python(text).body[0]
    for x in ast.walk(fresh):
        for attr in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
            if hasattr(x, attr):
                delattr(x, attr)
    found = block_of(an, node)
    if found is None:
        node.value = value
        return
    block, i = found
    block[i] = fresh


def dense_form(ctx: GenContext, source: str) -> str | None:
    """The dense linear form of ``source`` in the run's environment (see ``densify``)."""
    return densify(EnvView(layout_for(ctx)), source)


def dense_key(source: str) -> str:
    """The program's shape with numbers and the signs of terms blanked: two dense forms with one
    key differ only in their constants, so a tuning campaign on one can go on for the other."""
    tree = parse_python(source)

    class Blank(ast.NodeTransformer):
        def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
            self.generic_visit(node)
            if isinstance(node.op, ast.Sub):
                node.op = ast.Add()
            return node

        def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
            if au.is_signed_number(node):
                return ast.Constant(value=0)
            return self.generic_visit(node)

        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            return ast.Constant(value=0) if au.is_number(node) else node

    return au.skeleton(Blank().visit(tree))
