"""Calls the translator models: Python builtins, a few numpy and math functions, and the program's helpers.

Each is written out with the same meaning as the real function on the values the
translator holds (``max`` returns the first maximum, ``np.argmax`` the first index of
the maximum, ``int`` truncates toward zero). ``math.sqrt`` is a fresh variable with its
defining facts, so the solver stays in real arithmetic. Anything else is Unsupported,
named, so a reviewer knows which line kept the proof from going through.
"""

from __future__ import annotations

import ast
import math
from typing import Any

import z3

from scriptrl.glassbox.prove.values import (
    Builtin,
    Func,
    Module,
    Opaque,
    Unsupported,
    Vec,
    arith,
    b_and,
    b_not,
    b_or,
    describe,
    is_num,
    is_sym,
    merge,
    number,
    real,
    truth,
)

_NUMPY = {
    "clip",
    "dot",
    "array",
    "asarray",
    "argmax",
    "argmin",
    "abs",
    "absolute",
    "sign",
    "maximum",
    "minimum",
    "max",
    "min",
    "amax",
    "amin",
    "sum",
    "zeros",
    "ones",
    "float32",
    "float64",
    "sqrt",
    "mean",
    "where",
    "matmul",
    "int64",
    "int32",
}
_MATH = {"sqrt", "fabs", "floor", "ceil", "radians", "degrees"}
_CONSTANTS = {
    ("numpy", "pi"): math.pi,
    ("numpy", "e"): math.e,
    ("math", "pi"): math.pi,
    ("math", "e"): math.e,
    ("math", "tau"): math.tau,
}
MAX_SEQUENCE = 100_000


def known(module: str, name: str) -> bool:
    return (module, name) in _CONSTANTS or name in (_NUMPY if module == "numpy" else _MATH)


def module_attribute(mod: Module, name: str, line: int | None) -> Any:
    if (mod.name, name) in _CONSTANTS:
        return _CONSTANTS[(mod.name, name)]
    if known(mod.name, name):
        return Builtin(f"{mod.name}.{name}")
    return Opaque(f"{mod.name}.{name} (not modelled)") if line is None else _unsupported(mod, name, line)


def _unsupported(mod: Module, name: str, line: int | None) -> Any:
    raise Unsupported(f"{mod.name}.{name} (not modelled)", line)


def array_attribute(v: Vec, name: str) -> Any:
    if name in ("size",):
        return len(v.items)
    if name == "shape":
        return Vec([len(v.items)], "tuple")
    if name == "ndim":
        return 1
    raise Unsupported(f"the attribute .{name} of an array")


def call(tr: Any, e: ast.Call, env: dict) -> Any:
    fn = tr.expr(e.func, env)
    if any(isinstance(a, ast.Starred) for a in e.args):
        raise Unsupported("a call with *args", e.lineno)
    args = [tr.expr(a, env) for a in e.args]
    kwargs = {}
    for k in e.keywords:
        if k.arg is None:
            raise Unsupported("a call with **kwargs", e.lineno)
        kwargs[k.arg] = tr.expr(k.value, env)
    if isinstance(fn, Func):
        extra: dict = {}
        if _is_method_call(e):  # self.helper(x): the method sees self's attributes and methods
            extra = {k: v for k, v in env.items() if k.startswith("self.")}
            args = [Opaque("self itself (only self.attribute is modelled)"), *args]
        return tr.call_function(fn, args, kwargs, extra)
    if isinstance(fn, Builtin):
        return builtin(tr, fn.name, args, kwargs)
    raise Unsupported(f"calling {describe(fn)}", e.lineno)


def _is_method_call(e: ast.Call) -> bool:
    return (
        isinstance(e.func, ast.Attribute) and isinstance(e.func.value, ast.Name) and e.func.value.id == "self"
    )


def builtin(tr: Any, name: str, args: list, kwargs: dict) -> Any:
    short = name.split(".")[-1]
    if kwargs and not (
        short in ("array", "asarray", "zeros", "ones", "sum", "max", "min") and set(kwargs) <= {"dtype"}
    ):
        raise Unsupported(f"{name}() with keyword arguments {sorted(kwargs)}", tr.line)
    if name in ("abs", "numpy.abs", "numpy.absolute", "math.fabs"):
        return _map1(
            tr,
            args,
            lambda x: (
                x
                if not is_num(x)
                else (abs(x) if not is_sym(x) else z3.If(arith(x) >= 0, arith(x), -arith(x)))
            ),
        )
    if name in ("min", "max", "numpy.max", "numpy.min", "numpy.amax", "numpy.amin"):
        return _extreme(tr, args, "max" in short)
    if name in ("numpy.maximum", "numpy.minimum"):
        from scriptrl.glassbox.prove.operators import broadcast

        _arity(tr, name, args, 2)
        if isinstance(args[0], Vec) or isinstance(args[1], Vec):
            xs, ys = broadcast(tr, *args)
            return Vec(
                [_extreme(tr, [x, y], name.endswith("maximum")) for x, y in zip(xs, ys, strict=True)], "array"
            )
        return _extreme(tr, args, name.endswith("maximum"))
    if name in ("sum", "numpy.sum", "numpy.mean"):
        seq = _seq(tr, args[0] if args else None, name)
        total: Any = args[1] if len(args) > 1 and name == "sum" else 0
        for x in seq.items:
            total = _add(tr, total, x)
        if name == "numpy.mean":
            if not seq.items:
                raise Unsupported("numpy.mean of an empty sequence", tr.line)
            return total / len(seq.items) if not is_sym(total) else real(total) / len(seq.items)
        return total
    if name == "len":
        return len(_seq(tr, args[0] if args else None, name).items)
    if name == "range":
        return _range(tr, args)
    if name in ("enumerate", "zip", "reversed", "list", "tuple", "numpy.array", "numpy.asarray"):
        return _sequence_call(tr, name, args)
    if name in ("float", "numpy.float32", "numpy.float64"):
        return _map1(tr, args, lambda x: float(x) if not is_sym(x) else real(x))
    if name in ("int", "numpy.int64", "numpy.int32"):
        return _map1(tr, args, _truncate)
    if name == "bool":
        return truth(args[0]) if args else False
    if name in ("any", "all"):
        seq = _seq(tr, args[0] if args else None, name)
        acc: Any = name == "all"
        for x in seq.items:
            acc = b_and(acc, truth(x)) if name == "all" else b_or(acc, truth(x))
        return acc
    return _numeric(tr, name, args)


def _numeric(tr: Any, name: str, args: list) -> Any:
    if name == "numpy.clip":
        _arity(tr, name, args, 3)
        lo, hi = args[1], args[2]
        return _map1(tr, [args[0]], lambda x: _extreme(tr, [_extreme(tr, [x, lo], True), hi], False))
    if name in ("numpy.dot", "numpy.matmul"):
        _arity(tr, name, args, 2)
        return dot(tr, args[0], args[1])
    if name in ("numpy.argmax", "numpy.argmin"):
        return _argbest(tr, _seq(tr, args[0] if args else None, name), name.endswith("argmax"))
    if name == "numpy.sign":
        return _map1(tr, args, lambda x: _sign(x))
    if name in ("numpy.zeros", "numpy.ones"):
        n = number(args[0]) if args else None
        if not isinstance(n, int) or not 0 <= n <= MAX_SEQUENCE:
            raise Unsupported(f"{name}() of a shape other than a constant length", tr.line)
        return Vec([0.0 if name.endswith("zeros") else 1.0] * n, "array")
    if name in ("numpy.sqrt", "math.sqrt"):
        return _map1(tr, args, lambda x: _sqrt(tr, x))
    if name == "numpy.where":
        _arity(tr, name, args, 3)
        return merge(truth(args[0]), args[1], args[2])
    if name in ("math.floor", "math.ceil"):
        return _map1(tr, args, lambda x: _floor(x, name.endswith("ceil")))
    if name in ("math.radians", "math.degrees"):
        f = math.pi / 180 if name.endswith("radians") else 180 / math.pi
        return _map1(tr, args, lambda x: x * f if not is_sym(x) else real(x) * f)
    if name == "round":
        raise Unsupported("round() (ties to even are not modelled)", tr.line)
    raise Unsupported(f"{name}()", tr.line)


def _arity(tr: Any, name: str, args: list, n: int) -> None:
    if len(args) != n:
        raise Unsupported(f"{name}() with {len(args)} arguments", tr.line)


def _seq(tr: Any, v: Any, name: str) -> Vec:
    if not isinstance(v, Vec):
        raise Unsupported(f"{name}() of {describe(v)}", tr.line)
    return v


def _map1(tr: Any, args: list, fn: Any) -> Any:
    if len(args) != 1:
        raise Unsupported(f"a one-argument function called with {len(args)} arguments", tr.line)
    v = args[0]
    if isinstance(v, Vec):
        return Vec([_map1(tr, [x], fn) for x in v.items], "array")
    if not is_num(v):
        raise Unsupported(f"a numeric function of {describe(v)}", tr.line)
    return fn(v)


def _add(tr: Any, a: Any, b: Any) -> Any:
    from scriptrl.glassbox.prove.operators import binop

    return binop(tr, ast.Add(), a, b)


def _extreme(tr: Any, args: list, is_max: bool) -> Any:
    items = args[0].items if len(args) == 1 and isinstance(args[0], Vec) else args
    if not items:
        raise Unsupported("min() or max() of nothing", tr.line)
    best = items[0]
    for x in items[1:]:
        if isinstance(x, Vec) or isinstance(best, Vec):
            raise Unsupported("min() or max() over sequences of sequences", tr.line)
        if not is_sym(x) and not is_sym(best):
            best = x if (x > best if is_max else x < best) else best
        else:
            better = arith(x) > arith(best) if is_max else arith(x) < arith(best)
            best = merge(better, x, best)
    return best


def _argbest(tr: Any, seq: Vec, is_max: bool) -> Any:
    if not seq.items or len(seq.items) > 64:
        raise Unsupported(f"argmax/argmin of {len(seq.items)} values (1..64 are modelled)", tr.line)
    best_i: Any = 0
    best = seq.items[0]
    for i, x in enumerate(seq.items[1:], start=1):
        if not is_sym(x) and not is_sym(best):
            better: Any = x > best if is_max else x < best
        else:
            better = arith(x) > arith(best) if is_max else arith(x) < arith(best)
        best_i, best = merge(better, i, best_i), merge(better, x, best)
    return best_i


def dot(tr: Any, a: Any, b: Any) -> Any:
    if not isinstance(a, Vec) or not isinstance(b, Vec):
        from scriptrl.glassbox.prove.operators import binop

        return binop(tr, ast.Mult(), a, b)
    if a.items and isinstance(a.items[0], Vec):  # a matrix times a vector
        return Vec([dot(tr, row, b) for row in a.items], "array")
    if len(a.items) != len(b.items):
        raise Unsupported(f"a dot product of lengths {len(a.items)} and {len(b.items)}", tr.line)
    from scriptrl.glassbox.prove.operators import binop

    total: Any = 0
    for x, y in zip(a.items, b.items, strict=True):
        total = _add(tr, total, binop(tr, ast.Mult(), x, y))
    return total


def _truncate(x: Any) -> Any:
    if not is_sym(x):
        if isinstance(x, float) and not math.isfinite(x):
            raise Unsupported("int() of a non-finite number")
        return int(x)
    a = arith(x)
    if a.is_int():
        return a
    return z3.If(a >= 0, z3.ToInt(a), -z3.ToInt(-a))


def _floor(x: Any, ceil: bool) -> Any:
    if not is_sym(x):
        return math.ceil(x) if ceil else math.floor(x)
    r = real(x)
    return -z3.ToInt(-r) if ceil else z3.ToInt(r)


def _sign(x: Any) -> Any:
    if not is_sym(x):
        return float((x > 0) - (x < 0))
    a = real(x)
    return z3.If(a > 0, z3.RealVal(1), z3.If(a < 0, z3.RealVal(-1), z3.RealVal(0)))


def _sqrt(tr: Any, x: Any) -> Any:
    if not is_sym(x):
        if x < 0:
            raise Unsupported("the square root of a negative constant", tr.line)
        return math.sqrt(x)
    r = real(x)
    tr.oblige(r < 0, "a square root of a value that can be negative")
    s = tr.fresh_real("sqrt")
    tr.axioms.append(z3.Implies(r >= 0, z3.And(s >= 0, s * s == r)))
    return s


def _range(tr: Any, args: list) -> Vec:
    parts = [number(a) for a in args]
    ints = [p for p in parts if isinstance(p, int) and not isinstance(p, bool)]
    if not 1 <= len(parts) <= 3 or len(ints) != len(parts):
        raise Unsupported("range() of values other than constant integers", tr.line)
    r = range(*ints)
    if len(r) > MAX_SEQUENCE:
        raise Unsupported(f"range() of {len(r):,} values", tr.line)
    return Vec(list(r), "list")


def _sequence_call(tr: Any, name: str, args: list) -> Any:
    if name == "zip":
        seqs = [_seq(tr, a, name) for a in args]
        n = min((len(s.items) for s in seqs), default=0)
        return Vec([Vec([s.items[i] for s in seqs], "tuple") for i in range(n)], "list")
    if not args:
        return Vec([], "tuple" if name == "tuple" else "array" if name.startswith("numpy") else "list")
    seq = args[0]
    if name in ("numpy.array", "numpy.asarray") and is_num(seq):
        return seq
    seq = _seq(tr, seq, name)
    if name == "enumerate":
        start = number(args[1]) if len(args) > 1 else 0
        return Vec([Vec([start + i, x], "tuple") for i, x in enumerate(seq.items)], "list")
    if name == "reversed":
        return Vec(list(reversed(seq.items)), "list")
    if name in ("list", "tuple"):
        return Vec(list(seq.items), name)
    return Vec([_as_array(tr, x) for x in seq.items], "array")


def _as_array(tr: Any, x: Any) -> Any:
    if isinstance(x, Vec):
        return Vec([_as_array(tr, y) for y in x.items], "array")
    return x


def comprehension(tr: Any, e: ast.GeneratorExp | ast.ListComp, env: dict) -> Vec:
    """A list comprehension or generator over constant-length sequences, unrolled."""
    out: list = []

    def walk(i: int, scope: dict) -> None:
        if i == len(e.generators):
            out.append(tr.expr(e.elt, scope))
            if len(out) > MAX_SEQUENCE:
                raise Unsupported("a comprehension of more than 100,000 values", e.lineno)
            return
        gen = e.generators[i]
        if gen.is_async:
            raise Unsupported("an async comprehension", e.lineno)
        seq = _seq(tr, tr.expr(gen.iter, scope), "a comprehension")
        for item in seq.items:
            inner = dict(scope)
            tr.assign(gen.target, item, inner)
            keep: Any = True
            for cond in gen.ifs:
                keep = b_and(keep, truth(tr.expr(cond, inner)))
            if not isinstance(keep, bool):
                raise Unsupported("a comprehension filter that depends on the observation", e.lineno)
            if keep:
                walk(i + 1, inner)

    walk(0, dict(env))
    return Vec(out, "list")


__all__ = ["b_not", "call", "comprehension", "dot", "known", "module_attribute"]
