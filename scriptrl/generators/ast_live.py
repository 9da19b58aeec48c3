"""Which parts of a program can change an action: the rest holds numbers not worth tuning.

A number is *inert* when no run of the policy can observe a change to it: it sits in code
that never runs (after a ``return``, under ``if False:``), in a function or method nothing
calls, in a value that is overwritten before anything reads it or never read at all, in a
default every call overrides, or in the test of a branch whose two sides do the same
thing (``if x > 0.3: return 1`` followed by ``return 1``). Tuning such numbers spends
evaluations on plateaus; counting them made a note say "tuned 670 constants" of a program
with a handful that matter. The analysis is conservative: when in doubt a part is live.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
_EXITS = (ast.Return, ast.Raise, ast.Continue, ast.Break)
_CALLED_FROM_OUTSIDE = {"act", "reset", "__init__", "__call__"}


def inert_nodes(tree: ast.Module) -> set[ast.AST]:
    """Nodes (statements, branch tests, defaults) whose numbers cannot change an action.
    Empty when the program has no entry point (``policy`` or ``class Policy``)."""
    tops = {s.name: s for s in tree.body if isinstance(s, (*_DEFS, ast.ClassDef))}
    entry = tops.get("policy") if isinstance(tops.get("policy"), _DEFS) else tops.get("Policy")
    if entry is None:
        return set()
    inert: set[ast.AST] = set()
    blocks: list[list[ast.stmt]] = []
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):  # one walk: blocks in breadth-first order, parents, constant tests
        blocks += [
            b
            for b in (getattr(node, f, None) for f in ("body", "orelse", "finalbody"))
            if isinstance(b, list)
        ]
        for child in ast.iter_child_nodes(node):
            parents[child] = node
        _constant_tests(node, inert)
    for block in reversed(blocks):  # inner blocks first: a branch's outcome is known before its parent's
        _unreachable(block, inert)
    _overridden_defaults(tree, inert)
    functions = [_Function.of(fn, parents) for fn in parents if isinstance(fn, _DEFS)]
    while True:
        before = len(inert)
        _unused_module_code(tree, entry, inert)
        for fn in functions:
            if not any(a in inert for a in fn.chain):
                fn.dead_stores(inert)
        if len(inert) == before:
            return inert


def _unreachable(block: list[ast.stmt], inert: set[ast.AST]) -> None:
    """Statements after one that always leaves the block; and tests of same-outcome branches."""
    cut = next((i for i, s in enumerate(block) if isinstance(s, _EXITS)), len(block))
    inert.update(block[cut + 1 :])
    for i in range(min(cut, len(block) - 1), -1, -1):
        s = block[i]
        if not (isinstance(s, ast.If) and _pure(s.test)):
            continue
        body = _outcome(s.body, inert)
        if s.orelse:
            same = ast.dump(ast.Module(s.body, [])) == ast.dump(ast.Module(s.orelse, []))
            same = same or (body is not None and body == _outcome(s.orelse, inert))
        else:
            same = body is not None and body == _outcome(block[i + 1 :], inert)
        if same:
            inert.add(s.test)


def _outcome(block: list[ast.stmt], inert: set[ast.AST]) -> str | None:
    """The expression ``block`` always returns (through branches whose tests are inert), else None."""
    if not block:
        return None
    s = block[0]
    if isinstance(s, ast.Return):
        value = s.value
        while isinstance(value, ast.IfExp) and value.test in inert:
            value = value.body  # ``1 if x > 0.3 else 1`` returns 1
        return ast.dump(value) if value is not None else None
    if isinstance(s, ast.If) and s.test in inert:
        body = _outcome(s.body, inert)
        if s.orelse:
            return body if body == _outcome(s.orelse, inert) else None
        return body if body is not None and body == _outcome(block[1:], inert) else None
    return None


def _pure(test: ast.expr) -> bool:
    return not any(isinstance(n, ast.NamedExpr | ast.Yield | ast.Await) for n in ast.walk(test))


def _constant_tests(node: ast.AST, inert: set[ast.AST]) -> None:
    if isinstance(node, ast.If | ast.While | ast.IfExp) and isinstance(node.test, ast.Constant):
        if bool(node.test.value):
            if not isinstance(node, ast.While):
                inert.update(node.orelse if isinstance(node, ast.If) else [node.orelse])
        else:
            inert.update(node.body if isinstance(node.body, list) else [node.body])
    elif isinstance(node, ast.IfExp) and _pure(node.test) and ast.dump(node.body) == ast.dump(node.orelse):
        inert.add(node.test)


def _loads(node: ast.AST, inert: set[ast.AST]) -> set[str]:
    """Names and attribute names read in ``node`` outside inert parts."""
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if n in inert:
            continue
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Store):
            out.add(n.id)
        elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            out.add(n.target.id)  # ``x += 1`` reads x
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load):
            out.add(f".{n.attr}")
        stack.extend(ast.iter_child_nodes(n))
    return out


def _unused_module_code(tree: ast.Module, entry: ast.AST, inert: set[ast.AST]) -> None:
    """Top-level definitions and assignments nothing live reads; unused methods of classes."""
    needed = _loads(entry, inert)
    live = {entry}
    changed = True
    while changed:
        changed = False
        for s in tree.body:
            if s in live or s in inert or not _is_live_top(s, needed):
                continue
            live.add(s)
            needed |= _loads(s, inert)
            changed = True
    for i, s in enumerate(tree.body):
        if s not in live and isinstance(s, (*_DEFS, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.AugAssign)):
            inert.add(s)
        elif (name := _local_target(s)) is not None and _overwritten(tree.body, i, name, inert):
            inert.add(s)  # ``GAIN = 1.0`` ... ``GAIN = 2.0``: only the second is ever read
        elif isinstance(s, ast.ClassDef) and s in live:
            _unused_members(s, needed, inert)


def _is_live_top(s: ast.stmt, needed: set[str]) -> bool:
    if isinstance(s, (*_DEFS, ast.ClassDef)):
        return s.name in needed
    if isinstance(s, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = s.targets if isinstance(s, ast.Assign) else [s.target]
        return any(
            _root_name(t) in needed or not isinstance(t, ast.Name | ast.Tuple) for t in targets
        ) or any(
            e.id in needed
            for t in targets
            if isinstance(t, ast.Tuple)
            for e in t.elts
            if isinstance(e, ast.Name)
        )
    return True  # imports, calls such as ``random.seed(0)``, loops: they run at import


def _root_name(t: ast.expr) -> str | None:
    while isinstance(t, ast.Attribute | ast.Subscript):
        t = t.value
    return t.id if isinstance(t, ast.Name) else None


def _unused_members(cls: ast.ClassDef, needed: set[str], inert: set[ast.AST]) -> None:
    """Methods and class attributes of a live class that no live code reads as an attribute."""
    attrs = {n[1:] for n in needed if n.startswith(".")}
    for s in cls.body:
        if isinstance(s, _DEFS):
            if s.name not in _CALLED_FROM_OUTSIDE and not s.name.startswith("__") and s.name not in attrs:
                inert.add(s)
        elif isinstance(s, ast.Assign) and all(
            isinstance(t, ast.Name) and t.id not in attrs for t in s.targets
        ):
            if not cls.decorator_list:  # a dataclass field is an __init__ default
                inert.add(s)


@dataclass
class _Function:
    """A function with what its dead-store analysis needs, computed once."""

    node: ast.FunctionDef | ast.AsyncFunctionDef
    chain: list[ast.AST]  # the function and every node enclosing it
    declared: set[str]  # global or nonlocal: stores there are not local
    guarded: bool  # a try statement could observe a value between two stores
    blocks: list[list[ast.stmt]]

    @classmethod
    def of(cls, fn: ast.FunctionDef | ast.AsyncFunctionDef, parents: dict[ast.AST, ast.AST]) -> _Function:
        chain: list[ast.AST] = [fn]
        while chain[-1] in parents:
            chain.append(parents[chain[-1]])
        nodes = list(ast.walk(fn))
        declared = {g for n in nodes if isinstance(n, ast.Global | ast.Nonlocal) for g in n.names}
        blocks = [b for n in nodes for b in (getattr(n, f, None) for f in ("body", "orelse", "finalbody"))]
        guarded = any(isinstance(n, ast.Try) for n in nodes)
        return cls(fn, chain, declared, guarded, [b for b in blocks if isinstance(b, list)])

    def dead_stores(self, inert: set[ast.AST]) -> None:
        """Assignments to locals never read afterwards, or overwritten before any read."""
        reads = _loads(ast.Module(self.node.body, []), inert)
        for block in self.blocks:
            for i, s in enumerate(block):
                name = _local_target(s)
                if name is None or name in self.declared or s in inert:
                    continue
                if name not in reads or (not self.guarded and _overwritten(block, i, name, inert)):
                    inert.add(s)


def _local_target(s: ast.stmt) -> str | None:
    if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
        return s.targets[0].id
    if isinstance(s, ast.AnnAssign) and s.value is not None and isinstance(s.target, ast.Name):
        return s.target.id
    return None


def _overwritten(block: list[ast.stmt], i: int, name: str, inert: set[ast.AST]) -> bool:
    """Whether a later statement of the same block rebinds ``name`` before anything can read it."""
    for s in block[i + 1 :]:
        if _local_target(s) == name and name not in _mentions(s.value):  # type: ignore[attr-defined]
            return True
        if name in _mentions(s) or any(isinstance(n, _EXITS) for n in ast.walk(s)):
            return False  # read, rebound in a branch or a loop, or left early: the first value may survive
    return False


def _mentions(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _overridden_defaults(tree: ast.Module, inert: set[ast.AST]) -> None:
    """Defaults of a helper function's parameters that every call passes explicitly."""
    uses: dict[str, int] = {}
    calls_of: dict[str, list[ast.Call]] = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            uses[n.id] = uses.get(n.id, 0) + 1
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            calls_of.setdefault(n.func.id, []).append(n)
    for fn in tree.body:
        if not isinstance(fn, _DEFS) or fn.name == "policy" or not fn.args.defaults + fn.args.kw_defaults:
            continue
        calls = calls_of.get(fn.name, [])
        if (
            len(calls) != uses.get(fn.name, 0)  # passed around as a value: called some other way too
            or not calls
            or any(isinstance(a, ast.Starred) for c in calls for a in c.args)
            or any(k.arg is None for c in calls for k in c.keywords)
        ):
            continue
        params = [*fn.args.posonlyargs, *fn.args.args]
        first_default = len(params) - len(fn.args.defaults)
        for k, default in enumerate(fn.args.defaults):
            pos = first_default + k
            name = params[pos].arg
            if all(len(c.args) > pos or any(kw.arg == name for kw in c.keywords) for c in calls):
                inert.add(default)
        for p, kw_default in zip(fn.args.kwonlyargs, fn.args.kw_defaults, strict=True):
            if kw_default is not None and all(any(kw.arg == p.arg for kw in c.keywords) for c in calls):
                inert.add(kw_default)
