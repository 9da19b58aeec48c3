"""A whole policy file as a formula: its module-level constants and helpers, then the entry point.

``def policy(obs)`` is translated directly. ``class Policy`` is translated when it
keeps no state across calls: ``__init__`` and ``reset(seed)`` may set attributes (the
seed is a solver variable, so a proof holds for every seed), ``act`` and what it calls
may only read them. A Policy whose ``act`` writes ``self.x`` remembers the past, so a
property of one observation is not a property of the policy, and the answer is UNKNOWN
naming the attribute.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import z3

from scriptrl.glassbox.prove.translate import Obligation, State, Translator, bind_import
from scriptrl.glassbox.prove.values import Func, Opaque, Unsupported
from scriptrl.program.parsing import parse_python

MAX_SOURCE = 200_000


@dataclass
class ProgramModel:
    """What the translation produced: the action as a value over the observation, and its side conditions."""

    action: Any
    obligations: list[Obligation]
    axioms: list
    nodes: int


def parse(source: str, what: str = "the program") -> ast.Module:
    if len(source) > MAX_SOURCE:
        raise Unsupported(f"{what} is longer than {MAX_SOURCE:,} characters")
    try:
        return parse_python(source)
    except SyntaxError as e:
        raise Unsupported(f"{what} has a syntax error: {e.msg}", e.lineno) from None
    except (ValueError, RecursionError, MemoryError):
        raise Unsupported(f"{what} cannot be parsed (nested too deeply, or null bytes)") from None


def module_env(tr: Translator, tree: ast.Module) -> dict:
    """Module-level names: imports, helpers, classes, constants. A constant that cannot be
    translated is kept as Opaque, so it is an error only where the policy uses it."""
    env: dict = {}
    for s in tree.body:
        tr.tick(s)
        if isinstance(s, ast.Import | ast.ImportFrom):
            bind_import(s, env)
        elif isinstance(s, ast.FunctionDef):
            env[s.name] = Func(s, _defaults(tr, s, env))
        elif isinstance(s, ast.ClassDef):
            env[s.name] = Opaque(f"the class {s.name} (only class Policy is modelled)")
        elif isinstance(s, ast.Assign | ast.AnnAssign):
            value_node = s.value
            targets = s.targets if isinstance(s, ast.Assign) else [s.target]
            if value_node is None:
                continue
            try:
                value: Any = tr.expr(value_node, env)
                for t in targets:
                    tr.assign(t, value, env)
            except Unsupported as e:
                for t in targets:
                    for name in ast.walk(t):
                        if isinstance(name, ast.Name):
                            env[name.id] = Opaque(f"a module-level value that cannot be translated ({e})")
        elif isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant):
            continue
        else:
            raise Unsupported(f"module-level {type(s).__name__} (code that runs at import)", s.lineno)
    return env


def _defaults(tr: Translator, fn: ast.FunctionDef, env: dict) -> list:
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    defaults = fn.args.defaults
    out = []
    for p, d in zip(params[len(params) - len(defaults) :], defaults, strict=True):
        try:
            out.append((p, tr.expr(d, env)))
        except Unsupported as e:
            out.append((p, Opaque(f"the default of {p} ({e})")))
    return out


def translate_program(source: str, obs: Any, tr: Translator, seed: Any = None) -> ProgramModel:
    """The action the program returns for ``obs`` (a translator value), with its obligations."""
    tree = parse(source)
    tr.globals = module_env(tr, tree)
    entry = tr.globals.get("policy")
    if isinstance(entry, Func):
        action = tr.call_function(entry, [obs], {})
    else:
        cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Policy"), None)
        if cls is None:
            raise Unsupported("no entry point: define policy(obs) or class Policy")
        action = _policy_class(tr, cls, obs, seed if seed is not None else z3.Int("seed"))
    return ProgramModel(action, tr.obligations, tr.axioms, tr.nodes)


def _policy_class(tr: Translator, cls: ast.ClassDef, obs: Any, seed: Any) -> Any:
    if cls.bases or cls.keywords or cls.decorator_list:
        raise Unsupported("class Policy with bases or decorators", cls.lineno)
    methods: dict[str, ast.FunctionDef] = {}
    attrs: dict[str, Any] = {}
    for s in cls.body:
        if isinstance(s, ast.FunctionDef):
            methods[s.name] = s
        elif isinstance(s, ast.Assign | ast.AnnAssign) and s.value is not None:
            targets = s.targets if isinstance(s, ast.Assign) else [s.target]
            value = tr.expr(s.value, tr.globals)
            for t in targets:
                if isinstance(t, ast.Name):
                    attrs[f"self.{t.id}"] = value
        elif not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) or isinstance(s, ast.Pass)):
            raise Unsupported(f"{type(s).__name__} in the body of class Policy", s.lineno)
    if "act" not in methods:
        raise Unsupported("class Policy has no act()", cls.lineno)
    _refuse_state(methods)
    for name, node in methods.items():
        attrs[f"self.{name}"] = Func(node, _defaults(tr, node, tr.globals))
    me = Opaque("self itself (only self.attribute is modelled)")
    for init, args in (("__init__", [me]), ("reset", [me, seed])):
        if init in methods:
            attrs = _run_initialiser(tr, methods[init], args, attrs)
    return tr.call_function(Func(methods["act"]), [me, obs], {}, attrs)


def _run_initialiser(tr: Translator, node: ast.FunctionDef, args: list, attrs: dict) -> dict:
    """``__init__`` or ``reset``: the attributes it leaves set (it must not return a value)."""
    params = [a.arg for a in node.args.args]
    env = {**tr.globals, **attrs}
    for p, a in zip(params, args, strict=False):
        env[p] = a
    if len(params) > len(args) and len(params) - len(args) > len(node.args.defaults):
        raise Unsupported(f"{node.name}() takes more arguments than scriptrl passes", node.lineno)
    returns: list = []
    state = tr.block(node.body, State(env, True), returns, None)
    if any(v is not None for _, v in returns):
        raise Unsupported(f"{node.name}() returns a value", node.lineno)
    if returns:  # an early `return` in reset: the attributes differ by path
        raise Unsupported(f"an early return in {node.name}()", node.lineno)
    return {k: v for k, v in state.env.items() if k.startswith("self.")}


def _refuse_state(methods: dict[str, ast.FunctionDef]) -> None:
    """Writing an attribute outside __init__/reset means the action can depend on earlier calls."""
    for name, node in methods.items():
        if name in ("__init__", "reset"):
            continue
        for n in ast.walk(node):
            target = None
            if isinstance(n, ast.Assign | ast.AugAssign | ast.AnnAssign):
                for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                    target = _self_attr(t) or target
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
                target = _self_attr(n.func.value)  # self.history.append(...)
            if target:
                raise Unsupported(
                    f"class Policy keeps state across calls: {name}() changes self.{target}",
                    getattr(n, "lineno", 0),
                )


def _self_attr(t: ast.AST) -> str | None:
    while isinstance(t, ast.Subscript):
        t = t.value
    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
        return t.attr
    return None
