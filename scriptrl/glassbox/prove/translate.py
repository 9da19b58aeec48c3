"""A policy's AST as a z3 formula: what action it returns, as a function of the observation.

The program is only parsed (``ast``), never run. Execution is followed symbolically:
each statement updates an environment of values under a path condition; an ``if`` on
a value that depends on the observation runs both branches and merges them with
``z3.If``; a ``return`` records (condition, value); a ``for`` over a constant-length
sequence is unrolled; helper functions are inlined. Things Python would raise on (a
division by a value that can be 0, an index that can be out of range, a square root of
a negative number, a path that returns nothing) become *obligations*: conditions the
solver must show impossible before a proof counts. Anything else it cannot express is
:class:`Unsupported`, with its line, and the answer is UNKNOWN.
"""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass, field
from typing import Any

import z3

from scriptrl.glassbox.prove import calls
from scriptrl.glassbox.prove.operators import binop, compare, index, unary
from scriptrl.glassbox.prove.values import (
    UNBOUND,
    Builtin,
    Func,
    Module,
    Opaque,
    Unsupported,
    Vec,
    b_and,
    b_not,
    b_or,
    describe,
    merge,
    truth,
)

MAX_NODES = 200_000
MAX_DEPTH = 12
MAX_UNROLL = 20_000
_BUILTINS = (
    "abs",
    "min",
    "max",
    "sum",
    "len",
    "range",
    "enumerate",
    "zip",
    "float",
    "int",
    "bool",
    "list",
    "tuple",
    "any",
    "all",
    "reversed",
    "round",
)


@dataclass
class Obligation:
    """A condition under which the program leaves the model (raises, returns nothing)."""

    cond: Any
    what: str
    line: int | None


@dataclass
class State:
    env: dict
    alive: Any  # the path condition of reaching this point (a Python bool when decided)


@dataclass
class _Loop:
    breaks: list = field(default_factory=list)
    continues: list = field(default_factory=list)


class Translator:
    """Holds the limits, the obligations and the side facts (``sqrt`` definitions) of one translation."""

    def __init__(self, max_nodes: int = MAX_NODES, deadline: float | None = None, tag: str = "") -> None:
        self.max_nodes, self.deadline, self.tag = max_nodes, deadline, tag
        self.nodes = 0
        self.unrolled = 0
        self.obligations: list[Obligation] = []
        self.axioms: list[Any] = []
        self.pc: Any = True
        self.line: int | None = None
        self.depth = 0
        self.fresh = 0
        self.globals: dict = {}

    # ------------------------------------------------------------------ bookkeeping

    def tick(self, node: ast.AST) -> None:
        self.nodes += 1
        self.line = getattr(node, "lineno", self.line)
        if self.nodes > self.max_nodes:
            raise Unsupported(f"the formula is too large (more than {self.max_nodes:,} nodes)", self.line)
        if self.deadline is not None and self.nodes % 256 == 0 and time.monotonic() > self.deadline:
            raise Unsupported("translation ran out of time", self.line)

    def oblige(self, bad: Any, what: str) -> None:
        cond = b_and(self.pc, bad)
        if cond is True:
            raise Unsupported(what, self.line)
        if cond is not False:
            self.obligations.append(Obligation(cond, what, self.line))

    def fresh_real(self, prefix: str) -> Any:
        self.fresh += 1
        return z3.Real(f"{prefix}{self.tag}!{self.fresh}")

    # ------------------------------------------------------------------ functions

    def call_function(self, fn: Func, args: list, kwargs: dict, extra_env: dict | None = None) -> Any:
        node = fn.node
        if self.depth >= MAX_DEPTH:
            raise Unsupported(
                f"calls nested deeper than {MAX_DEPTH} (recursion?) in {node.name}()", self.line
            )
        params = [a.arg for a in node.args.posonlyargs + node.args.args]
        if node.args.vararg or node.args.kwarg or node.args.kwonlyargs:
            raise Unsupported(f"*args, **kwargs or keyword-only parameters of {node.name}()", node.lineno)
        env = {**self.globals, **(extra_env or {})}
        if len(args) > len(params):
            raise Unsupported(f"{node.name}() called with {len(args)} arguments", self.line)
        env.update(zip(params, args, strict=False))
        for p in params[len(args) :]:
            if p in kwargs:
                env[p] = kwargs.pop(p)
            elif p in dict(fn.defaults):
                env[p] = dict(fn.defaults)[p]
            else:
                raise Unsupported(f"{node.name}() called without its argument {p!r}", self.line)
        if kwargs:
            raise Unsupported(f"{node.name}() has no parameter {next(iter(kwargs))!r}", self.line)
        saved_pc, saved_line = self.pc, self.line
        self.depth += 1
        returns: list = []
        try:
            state = self.block(node.body, State(env, self.pc), returns, None)
        finally:
            self.depth -= 1
            self.pc, self.line = saved_pc, saved_line
        if state.alive is not False:
            returns.append((state.alive, None))
        return self._combine(returns, node)

    def _combine(self, returns: list, node: ast.FunctionDef) -> Any:
        values = [(c, v) for c, v in returns if c is not False and v is not None]
        nones = [c for c, v in returns if c is not False and v is None]
        if nones:
            cond = nones[0]
            for c in nones[1:]:
                cond = b_or(cond, c)
            saved, self.pc = self.pc, True
            self.line = node.lineno
            self.oblige(cond, f"{node.name}() can end without returning a value")
            self.pc = saved
        if not values:
            raise Unsupported(f"{node.name}() never returns a value", node.lineno)
        result = values[-1][1]
        for c, v in reversed(values[:-1]):
            result = merge(c, v, result)
        return result

    # ------------------------------------------------------------------ statements

    def block(self, stmts: list, state: State, returns: list, loop: _Loop | None) -> State:
        for stmt in stmts:
            if state.alive is False:
                break
            self.tick(stmt)
            self.pc = state.alive
            state = self.statement(stmt, state, returns, loop)
        return state

    def statement(self, s: ast.stmt, state: State, returns: list, loop: _Loop | None) -> State:
        if isinstance(s, ast.Return):
            value = self.expr(s.value, state.env) if s.value is not None else None
            returns.append((state.alive, value))
            return State(state.env, False)
        if isinstance(s, ast.Assign):
            value = self.expr(s.value, state.env)
            for target in s.targets:
                self.assign(target, value, state.env)
            return state
        if isinstance(s, ast.AnnAssign):
            if s.value is not None:
                self.assign(s.target, self.expr(s.value, state.env), state.env)
            return state
        if isinstance(s, ast.AugAssign):
            if not isinstance(s.target, ast.Name):
                raise Unsupported("augmented assignment to an element or attribute", s.lineno)
            old = self.load(s.target.id, state.env, s)
            state.env[s.target.id] = binop(self, s.op, old, self.expr(s.value, state.env))
            return state
        if isinstance(s, ast.If):
            return self.branch(s, state, returns, loop)
        if isinstance(s, ast.For):
            return self.for_loop(s, state, returns)
        if isinstance(s, ast.Break | ast.Continue):
            if loop is None:
                raise Unsupported("break or continue outside a loop", s.lineno)
            (loop.breaks if isinstance(s, ast.Break) else loop.continues).append(
                State(dict(state.env), state.alive)
            )
            return State(state.env, False)
        if isinstance(s, ast.Pass):
            return state
        if isinstance(s, ast.Expr):
            if not (isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)):
                self.expr(s.value, state.env)  # a call for its value only; unknown calls are Unsupported
            return state
        if isinstance(s, ast.Assert):
            self.oblige(b_not(truth(self.expr(s.test, state.env))), "an assert that can fail")
            return state
        if isinstance(s, ast.Raise):
            self.oblige(True if state.alive is True else state.alive, "a raise statement that can be reached")
            return State(state.env, False)
        if isinstance(s, ast.Import | ast.ImportFrom):
            bind_import(s, state.env)
            return state
        raise Unsupported(f"{_stmt_name(s)} is not modelled", s.lineno)

    def assign(self, target: ast.expr, value: Any, env: dict) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
            return
        if isinstance(target, ast.Tuple | ast.List):
            if not isinstance(value, Vec) or len(value.items) != len(target.elts):
                raise Unsupported(f"unpacking {describe(value)} into {len(target.elts)} names", target.lineno)
            for t, v in zip(target.elts, value.items, strict=True):
                self.assign(t, v, env)
            return
        if (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "self"
        ):
            env[f"self.{target.attr}"] = value
            return
        raise Unsupported("assignment to an element or attribute (mutation)", target.lineno)

    def branch(self, s: ast.If, state: State, returns: list, loop: _Loop | None) -> State:
        cond = truth(self.expr(s.test, state.env))
        if cond is True:
            return self.block(s.body, state, returns, loop)
        if cond is False:
            return self.block(s.orelse, state, returns, loop)
        then = self.block(s.body, State(dict(state.env), b_and(state.alive, cond)), returns, loop)
        other = self.block(s.orelse, State(dict(state.env), b_and(state.alive, b_not(cond))), returns, loop)
        return merge_states([then, other])

    def for_loop(self, s: ast.For, state: State, returns: list) -> State:
        if s.orelse:
            raise Unsupported("for ... else", s.lineno)
        seq = self.expr(s.iter, state.env)
        if not isinstance(seq, Vec):
            raise Unsupported(
                f"a for loop over {describe(seq)} (only constant-length sequences are unrolled)", s.lineno
            )
        stopped: list[State] = []  # paths that left by break; later iterations run only on the others
        for item in seq.items:
            if state.alive is False:
                break
            self.unrolled += 1
            if self.unrolled > MAX_UNROLL:
                raise Unsupported(f"loops unroll to more than {MAX_UNROLL:,} iterations", s.lineno)
            self.pc = state.alive
            self.assign(s.target, item, state.env)
            loop = _Loop()
            state = self.block(s.body, state, returns, loop)
            state = merge_states([state, *loop.continues])
            stopped.extend(loop.breaks)
        return merge_states([state, *stopped])

    # ------------------------------------------------------------------ expressions

    def load(self, name: str, env: dict, node: ast.AST) -> Any:
        if name in env:
            value = env[name]
        elif name in _BUILTINS:
            value = Builtin(name)
        elif name in ("True", "False", "None"):
            value = {"True": True, "False": False, "None": None}[name]
        else:
            raise Unsupported(
                f"the name {name!r} (not defined, or not modelled)", getattr(node, "lineno", None)
            )
        if value is UNBOUND:
            raise Unsupported(f"{name!r} may be unassigned on some path", getattr(node, "lineno", None))
        if isinstance(value, Opaque):
            raise Unsupported(f"{name!r}: {value.why}", getattr(node, "lineno", None))
        return value

    def expr(self, e: ast.expr, env: dict) -> Any:
        self.tick(e)
        if isinstance(e, ast.Constant):
            if isinstance(e.value, str | bytes):
                raise Unsupported("a string value (string operations are not modelled)", e.lineno)
            if not isinstance(e.value, bool | int | float) and e.value is not None:
                raise Unsupported(f"the constant {e.value!r}", e.lineno)
            return e.value
        if isinstance(e, ast.Name):
            return self.load(e.id, env, e)
        if isinstance(e, ast.BinOp):
            return binop(self, e.op, self.expr(e.left, env), self.expr(e.right, env))
        if isinstance(e, ast.UnaryOp):
            return unary(self, e.op, self.expr(e.operand, env))
        if isinstance(e, ast.BoolOp):
            return self.bool_op(e, env)
        if isinstance(e, ast.Compare):
            return compare(self, e, env)
        if isinstance(e, ast.IfExp):
            cond = truth(self.expr(e.test, env))
            return merge(cond, self.guarded(cond, e.body, env), self.guarded(b_not(cond), e.orelse, env))
        if isinstance(e, ast.Tuple | ast.List):
            return Vec([self.expr(x, env) for x in e.elts], "tuple" if isinstance(e, ast.Tuple) else "list")
        if isinstance(e, ast.Subscript):
            return index(self, self.expr(e.value, env), e.slice, env)
        if isinstance(e, ast.Attribute):
            return self.attribute(e, env)
        if isinstance(e, ast.Call):
            return calls.call(self, e, env)
        if isinstance(e, ast.GeneratorExp | ast.ListComp):
            return calls.comprehension(self, e, env)
        if isinstance(e, ast.Dict):
            return self.dict_literal(e, env)
        raise Unsupported(f"the expression {type(e).__name__}", getattr(e, "lineno", None))

    def guarded(self, cond: Any, e: ast.expr, env: dict) -> Any:
        """Evaluate ``e`` where ``cond`` holds, so what it obliges is only required there."""
        if cond is False:
            return None
        saved, self.pc = self.pc, b_and(self.pc, cond)
        try:
            return self.expr(e, env)
        finally:
            self.pc = saved

    def bool_op(self, e: ast.BoolOp, env: dict) -> Any:
        is_and = isinstance(e.op, ast.And)
        value = self.expr(e.values[0], env)
        for nxt in e.values[1:]:
            t = truth(value)
            if t is (not is_and):  # decided: `x or ...` with x truthy, `x and ...` with x falsy
                return value
            rest = self.guarded(t if is_and else b_not(t), nxt, env)
            if t is is_and:
                value = rest
                continue
            value = merge(t, rest, value) if is_and else merge(t, value, rest)
        return value

    def attribute(self, e: ast.Attribute, env: dict) -> Any:
        if isinstance(e.value, ast.Name) and e.value.id == "self":
            key = f"self.{e.attr}"
            if key not in env:
                raise Unsupported(f"self.{e.attr} (not set by __init__ or reset)", e.lineno)
            return self.load(key, env, e)
        base = self.expr(e.value, env)
        if isinstance(base, Module):
            return calls.module_attribute(base, e.attr, e.lineno)
        if isinstance(base, Vec) and e.attr in ("T", "size", "shape", "ndim"):
            return calls.array_attribute(base, e.attr)
        raise Unsupported(f"the attribute .{e.attr} of {describe(base)}", e.lineno)

    def dict_literal(self, e: ast.Dict, env: dict) -> Any:
        out = {}
        for k, v in zip(e.keys, e.values, strict=True):
            if k is None:
                raise Unsupported("dict unpacking", e.lineno)
            key = self.expr(k, env)
            if not isinstance(key, bool | int | float):
                raise Unsupported("a dict key that is not a constant number", e.lineno)
            out[key] = self.expr(v, env)
        return Opaque("a dict") if not out else _ConstDict(out)


class _ConstDict(dict):
    """A dict with constant keys: indexing by a constant is exact, by a symbolic int an If-chain."""


def merge_states(states: list[State]) -> State:
    live = [s for s in states if s.alive is not False]
    if not live:
        return State(states[0].env if states else {}, False)
    if len(live) == 1:
        return live[0]
    env: dict = {}
    alive = live[0].alive
    for s in live[1:]:
        alive = b_or(alive, s.alive)
    keys = set().union(*(s.env for s in live))
    for k in keys:
        if any(k not in s.env for s in live):
            env[k] = UNBOUND
            continue
        value = live[-1].env[k]
        for s in reversed(live[:-1]):
            value = merge(s.alive, s.env[k], value)
        env[k] = value
    return State(env, alive)


def bind_import(s: ast.Import | ast.ImportFrom, env: dict) -> None:
    modelled = {"numpy": "numpy", "math": "math"}
    if isinstance(s, ast.Import):
        for alias in s.names:
            name = alias.name.split(".")[0]
            target = alias.asname or name
            env[target] = (
                Module(modelled[name])
                if name in modelled and "." not in alias.name
                else Opaque(f"the module {alias.name} (not modelled)")
            )
        return
    mod = s.module or ""
    for alias in s.names:
        target = alias.asname or alias.name
        if mod in modelled and calls.known(modelled[mod], alias.name):
            env[target] = calls.module_attribute(Module(modelled[mod]), alias.name, s.lineno)
        else:
            env[target] = Opaque(f"{mod}.{alias.name} (not modelled)")


def _stmt_name(s: ast.stmt) -> str:
    names = {
        ast.While: "a while loop (unbounded)",
        ast.Try: "a try",
        ast.With: "a with",
        ast.Global: "a global",
        ast.Nonlocal: "a nonlocal",
        ast.FunctionDef: "a nested function",
        ast.ClassDef: "a nested class",
        ast.Delete: "a del",
        ast.Match: "a match",
    }
    return names.get(type(s), f"a {type(s).__name__} statement")
