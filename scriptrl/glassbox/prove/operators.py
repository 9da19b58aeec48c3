"""Operators on translator values: arithmetic, comparisons and indexing, with Python's meaning.

Lists and tuples concatenate and repeat; numpy arrays broadcast elementwise. Constants
fold in Python so loops and table lookups stay exact; a value that depends on the
observation becomes a z3 term. Division by a value that can be zero and an index that
can be out of range become obligations (see ``translate.Obligation``).
"""

from __future__ import annotations

import ast
import operator
from typing import Any

import z3

from scriptrl.glassbox.prove.values import (
    Unsupported,
    Vec,
    arith,
    b_and,
    b_or,
    describe,
    is_num,
    is_sym,
    merge,
    number,
    real,
    truth,
)

_PY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMP = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def binop(tr: Any, op: ast.operator, a: Any, b: Any) -> Any:
    if isinstance(op, ast.MatMult):
        from scriptrl.glassbox.prove.calls import dot

        return dot(tr, a, b)
    if isinstance(a, Vec) or isinstance(b, Vec):
        return _vector_op(tr, op, a, b)
    if type(op) not in _PY:
        raise Unsupported(f"the operator {type(op).__name__}", tr.line)
    if not (is_num(a) and is_num(b)):
        raise Unsupported(f"{type(op).__name__} of {describe(a)} and {describe(b)}", tr.line)
    if not is_sym(a) and not is_sym(b):
        try:
            return _PY[type(op)](a, b)
        except (ZeroDivisionError, OverflowError, ValueError, TypeError) as e:
            raise Unsupported(f"a constant expression that raises ({e})", tr.line) from None
    return _symbolic(tr, op, a, b)


def _symbolic(tr: Any, op: ast.operator, a: Any, b: Any) -> Any:
    x, y = arith(a), arith(b)
    if isinstance(op, ast.Add):
        return x + y
    if isinstance(op, ast.Sub):
        return x - y
    if isinstance(op, ast.Mult):
        return x * y
    if isinstance(op, ast.Div):
        if is_sym(b) or b == 0:
            tr.oblige(y == 0, "a division by a value that can be 0")
        return real(x) / real(y)
    if isinstance(op, ast.Pow):
        n = b if not is_sym(b) else None
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 8:
            raise Unsupported("a power other than a constant integer 0..8", tr.line)
        out: Any = 1 if n == 0 else x
        for _ in range(n - 1):
            out = out * x
        return out
    if isinstance(op, ast.FloorDiv | ast.Mod):
        if is_sym(b) or not isinstance(b, int) or b <= 0 or not x.is_int():
            raise Unsupported("// or % other than of an integer by a positive integer constant", tr.line)
        return (
            x / y if isinstance(op, ast.FloorDiv) else x % y
        )  # z3's div and mod floor for a positive divisor
    raise Unsupported(f"the operator {type(op).__name__}", tr.line)


def _vector_op(tr: Any, op: ast.operator, a: Any, b: Any) -> Any:
    arrays = any(isinstance(v, Vec) and v.kind == "array" for v in (a, b))
    if not arrays:
        if isinstance(op, ast.Add) and isinstance(a, Vec) and isinstance(b, Vec) and a.kind == b.kind:
            return Vec(a.items + b.items, a.kind)
        if isinstance(op, ast.Mult) and (isinstance(a, Vec) != isinstance(b, Vec)):
            seq, n = (a, b) if isinstance(a, Vec) else (b, a)
            count = number(n)
            if not isinstance(count, int) or count > 10_000:
                raise Unsupported("repeating a sequence a non-constant or huge number of times", tr.line)
            return Vec(seq.items * max(count, 0), seq.kind)
        raise Unsupported(f"{type(op).__name__} of {describe(a)} and {describe(b)}", tr.line)
    xs, ys = broadcast(tr, a, b)
    return Vec([binop(tr, op, x, y) for x, y in zip(xs, ys, strict=True)], "array")


def broadcast(tr: Any, a: Any, b: Any) -> tuple[list, list]:
    if isinstance(a, Vec) and isinstance(b, Vec):
        if len(a.items) != len(b.items):
            if len(a.items) == 1 or len(b.items) == 1:
                n = max(len(a.items), len(b.items))
                return (a.items * n if len(a.items) == 1 else a.items), (
                    b.items * n if len(b.items) == 1 else b.items
                )
            raise Unsupported(f"arrays of lengths {len(a.items)} and {len(b.items)} combined", tr.line)
        return a.items, b.items
    if isinstance(a, Vec):
        return a.items, [b] * len(a.items)
    return [a] * len(b.items), b.items


def unary(tr: Any, op: ast.unaryop, v: Any) -> Any:
    if isinstance(op, ast.Not):
        t = truth(v)
        return (not t) if isinstance(t, bool) else z3.Not(t)
    if isinstance(v, Vec):
        if v.kind != "array":
            raise Unsupported(f"a unary operator on {describe(v)}", tr.line)
        return Vec([unary(tr, op, x) for x in v.items], "array")
    if not is_num(v):
        raise Unsupported(f"a unary operator on {describe(v)}", tr.line)
    if isinstance(op, ast.USub):
        return -v if not is_sym(v) else -arith(v)
    if isinstance(op, ast.UAdd):
        return +v if not is_sym(v) else arith(v)
    raise Unsupported("the operator ~", tr.line)


def compare(tr: Any, e: ast.Compare, env: dict) -> Any:
    left = tr.expr(e.left, env)
    result: Any = True
    for op, right_node in zip(e.ops, e.comparators, strict=True):
        right = tr.expr(right_node, env)
        result = b_and(result, compare_one(tr, op, left, right))
        left = right
    return result


def compare_one(tr: Any, op: ast.cmpop, a: Any, b: Any) -> Any:
    if isinstance(op, ast.Is | ast.IsNot):
        if a is None or b is None:
            same = a is None and b is None
            return same if isinstance(op, ast.Is) else not same
        raise Unsupported("`is` between values other than None", tr.line)
    if isinstance(op, ast.In | ast.NotIn):
        if not isinstance(b, Vec):
            raise Unsupported(f"`in` {describe(b)}", tr.line)
        found: Any = False
        for item in b.items:
            found = b_or(found, compare_one(tr, ast.Eq(), a, item))
        return found if isinstance(op, ast.In) else (not found if isinstance(found, bool) else z3.Not(found))
    if isinstance(a, Vec) or isinstance(b, Vec):
        both_seq = isinstance(a, Vec) and isinstance(b, Vec) and "array" not in (a.kind, b.kind)
        if both_seq and isinstance(op, ast.Eq | ast.NotEq):
            eq: Any = len(a.items) == len(b.items)
            for x, y in zip(a.items, b.items, strict=False):
                eq = b_and(eq, compare_one(tr, ast.Eq(), x, y))
            return eq if isinstance(op, ast.Eq) else (not eq if isinstance(eq, bool) else z3.Not(eq))
        if both_seq or not any(isinstance(v, Vec) and v.kind == "array" for v in (a, b)):
            raise Unsupported(f"comparing {describe(a)} with {describe(b)}", tr.line)
        xs, ys = broadcast(tr, a, b)
        return Vec([compare_one(tr, op, x, y) for x, y in zip(xs, ys, strict=True)], "array")
    if a is None or b is None:
        if isinstance(op, ast.Eq | ast.NotEq):
            same = a is None and b is None
            return same if isinstance(op, ast.Eq) else not same
        raise Unsupported("ordering comparison with None", tr.line)
    if not (is_num(a) and is_num(b)):
        raise Unsupported(f"comparing {describe(a)} with {describe(b)}", tr.line)
    if not is_sym(a) and not is_sym(b):
        return bool(_CMP[type(op)](a, b))
    return _CMP[type(op)](arith(a), arith(b))


def index(tr: Any, base: Any, sl: ast.expr, env: dict) -> Any:
    if isinstance(sl, ast.Slice):
        if not isinstance(base, Vec):
            raise Unsupported(f"slicing {describe(base)}", tr.line)
        parts = [number(tr.expr(p, env)) if p is not None else None for p in (sl.lower, sl.upper, sl.step)]
        bounds = [p for p in parts if p is None or isinstance(p, int)]
        if len(bounds) != len(parts):
            raise Unsupported("a slice with non-integer bounds", tr.line)
        return Vec(base.items[slice(*bounds)], base.kind)
    if isinstance(sl, ast.Tuple) and isinstance(base, Vec):  # a[i, j] on a 2-D array
        out = base
        for part in sl.elts:
            out = index(tr, out, part, env)
        return out
    key = tr.expr(sl, env)
    if isinstance(base, dict):
        if not is_sym(key):
            if key not in base:
                raise Unsupported(f"the key {key!r} is not in the dict", tr.line)
            return base[key]
        return _lookup(tr, list(base.items()), key, "a dict key that can be missing")
    if not isinstance(base, Vec):
        raise Unsupported(f"indexing {describe(base)}", tr.line)
    n = len(base.items)
    if not is_sym(key):
        if isinstance(key, bool) or not isinstance(key, int):
            raise Unsupported(f"an index that is not an integer ({describe(key)})", tr.line)
        if not -n <= key < n:
            raise Unsupported(f"the index {key} is out of range for {describe(base)}", tr.line)
        return base.items[key]
    if not (z3.is_arith(key) and key.is_int()):
        raise Unsupported("an index that is not an integer (a float index raises in Python)", tr.line)
    if n > 4096:
        raise Unsupported(f"a lookup into a table of {n} entries", tr.line)
    pairs = [(i, v) for i, v in enumerate(base.items)] + [(i - n, v) for i, v in enumerate(base.items)]
    return _lookup(tr, pairs, key, f"an index that can be out of range for {describe(base)}")


def _lookup(tr: Any, pairs: list, key: Any, what: str) -> Any:
    """``table[key]`` for a symbolic key: an If-chain over the constant keys, and an obligation to hit one."""
    hit: Any = False
    for k, _ in pairs:
        hit = b_or(hit, arith(key) == arith(k))
    tr.oblige(z3.Not(hit) if not isinstance(hit, bool) else (not hit), what)
    value = pairs[-1][1]
    for k, v in reversed(pairs[:-1]):
        value = merge(arith(key) == arith(k), v, value)
    return value
