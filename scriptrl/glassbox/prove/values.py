"""Symbolic values for the translator: numbers, z3 terms, fixed-length vectors, and how they combine.

Why constants stay Python values: most of a policy (its gains, lookup tables, loop
counters) does not depend on the observation, and folding it here keeps the formula
small and lets a loop over ``range(k)`` or an index into a constant table resolve
exactly. Only values that depend on ``obs`` become z3 terms. Arithmetic is over the
reals (and integers): float rounding is not modelled, which is why every
counterexample is replayed in the sandbox before it is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3


class Unsupported(Exception):
    """A construct the translator cannot express; the proof answers UNKNOWN naming it."""

    def __init__(self, what: str, line: int | None = None) -> None:
        super().__init__(what)
        self.what, self.line = what, line

    def __str__(self) -> str:
        return f"line {self.line}: {self.what}" if self.line else self.what


@dataclass
class Vec:
    """A list, tuple or numpy array of known length; ``kind`` decides what ``+`` and ``*`` mean."""

    items: list
    kind: str = "list"  # list | tuple | array


@dataclass(frozen=True)
class Module:
    """``numpy`` or ``math`` (as imported); other modules are :class:`Opaque`."""

    name: str


@dataclass(frozen=True)
class Builtin:
    """A callable the translator models: ``min``, ``numpy.clip``, ``math.sqrt``..."""

    name: str


@dataclass(frozen=True)
class Opaque:
    """A name bound to something the translator cannot model; using it is UNKNOWN, defining it is not."""

    why: str


@dataclass
class Func:
    """A helper function (or method) defined in the program, inlined at each call."""

    node: Any
    defaults: list = field(default_factory=list)


UNBOUND = Opaque("a variable that may be unassigned on some path")


def is_sym(v: Any) -> bool:
    return isinstance(v, z3.ExprRef)


def is_num(v: Any) -> bool:
    """A Python number (bools count, as in Python) or an arithmetic/boolean z3 term."""
    return isinstance(v, bool | int | float) or (is_sym(v) and (z3.is_arith(v) or z3.is_bool(v)))


def const(v: Any) -> Any:
    """A Python constant as a z3 term (floats exactly, as the binary value Python holds)."""
    if isinstance(v, bool):
        return z3.BoolVal(v)
    if isinstance(v, int):
        return z3.IntVal(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise Unsupported(f"the non-finite constant {v!r}")
        f = Fraction(v)
        return z3.RealVal(f"{f.numerator}/{f.denominator}")
    return v


def arith(v: Any) -> Any:
    """A number as an arithmetic z3 term; a bool counts as 0 or 1, as in Python."""
    if isinstance(v, bool):
        return z3.IntVal(int(v))
    if is_sym(v) and z3.is_bool(v):
        return z3.If(v, z3.IntVal(1), z3.IntVal(0))
    if is_sym(v):
        return v
    if isinstance(v, int | float):
        return const(v)
    raise Unsupported(f"arithmetic on {describe(v)}")


def real(v: Any) -> Any:
    a = arith(v)
    return z3.ToReal(a) if a.is_int() else a


def truth(v: Any) -> Any:
    """Python truthiness: a Python bool when it is decided, else a z3 Bool."""
    if isinstance(v, bool | int | float) or v is None:
        return bool(v)
    if is_sym(v):
        return v if z3.is_bool(v) else arith(v) != 0
    if isinstance(v, Vec):
        if v.kind == "array" and len(v.items) != 1:
            raise Unsupported("the truth value of an array with more than one element (use any() or all())")
        return truth(v.items[0]) if v.kind == "array" else bool(v.items)
    raise Unsupported(f"the truth value of {describe(v)}")


def describe(v: Any) -> str:
    if isinstance(v, Vec):
        return f"a {v.kind} of {len(v.items)}"
    if isinstance(v, Opaque):
        return v.why
    if isinstance(v, str):
        return "a string"
    return type(v).__name__


def b_and(a: Any, b: Any) -> Any:
    if a is False or b is False:
        return False
    if a is True:
        return b
    if b is True:
        return a
    return z3.And(a, b)


def b_or(a: Any, b: Any) -> Any:
    if a is True or b is True:
        return True
    if a is False:
        return b
    if b is False:
        return a
    return z3.Or(a, b)


def b_not(a: Any) -> Any:
    return (not a) if isinstance(a, bool) else z3.Not(a)


def merge(cond: Any, a: Any, b: Any) -> Any:
    """``a if cond else b`` for any two values of the same shape."""
    if cond is True or a is b:
        return a
    if cond is False:
        return b
    if isinstance(a, Vec) and isinstance(b, Vec):
        if len(a.items) != len(b.items):
            raise Unsupported(f"a {a.kind} of {len(a.items)} on one path and of {len(b.items)} on another")
        return Vec([merge(cond, x, y) for x, y in zip(a.items, b.items, strict=True)], a.kind)
    if a is None and b is None:
        return None
    if isinstance(a, Opaque | Func | Module | Builtin) or isinstance(b, Opaque | Func | Module | Builtin):
        if a == b:
            return a
        return (
            UNBOUND if UNBOUND in (a, b) else Opaque(f"{describe(a)} or {describe(b)} depending on the path")
        )
    if not (is_num(a) and is_num(b)):
        raise Unsupported(f"{describe(a)} on one path and {describe(b)} on another")
    if type(a) is type(b) and not is_sym(a) and a == b:
        return a
    sa, sb = const(a), const(b)
    if z3.is_bool(sa) and z3.is_bool(sb):
        return z3.If(cond, sa, sb)
    return z3.If(cond, arith(sa), arith(sb))


def number(v: Any) -> float | int | bool:
    """A decided value, for places that need one (a loop count, an index, a shape)."""
    if isinstance(v, bool | int | float):
        return v
    raise Unsupported(f"a value that depends on the observation where a constant is needed ({describe(v)})")


def model_number(v: Any) -> float:
    """A z3 model value as a float (algebraic numbers from nonlinear problems approximated)."""
    if z3.is_int_value(v):
        return float(v.as_long())
    if z3.is_rational_value(v):
        f = v.as_fraction()
        return f.numerator / f.denominator
    if z3.is_algebraic_value(v):
        return float(v.approx(20).as_fraction())
    if z3.is_true(v) or z3.is_false(v):
        return float(z3.is_true(v))
    raise Unsupported(f"the solver's value {v}")
