"""Which names a program binds and reads, scope by scope: the one binding analysis.

Two users need it. The generators check that a child program reads only names that are
bound where it reads them: a condition transplanted into ``Policy.act`` that names a local of
``reset`` (or of another parent's ``policy``) is a NameError at run time although the module
binds that name somewhere. Tidying a model's reply needs the names a top-level statement
reads that nothing defines. Both read the same ``Scope`` tree, built by following Python's
rules: functions, lambdas, classes and comprehensions are scopes; a class body is not
visible from its methods; ``global``/``nonlocal`` names resolve outside; a binding takes
effect after the value it binds is evaluated (``x = x + 1`` reads ``x`` before binding it).
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

from scriptrl.generators.ast_tree import entry_function, walk_function
from scriptrl.program import check_source
from scriptrl.program.parsing import parse_python

BUILTINS = frozenset(dir(builtins))

Pos = tuple[int, int]
_ALWAYS: Pos = (0, 0)  # parameters and comprehension targets: bound before any read
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
_COMPS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass
class Scope:
    """One scope: what it binds (with the first position a binding takes effect), what it reads."""

    node: ast.AST
    kind: str  # "module" | "function" | "class" | "comprehension"
    parent: Scope | None
    binds: dict[str, Pos] = field(default_factory=dict)
    loads: list[tuple[str, Pos]] = field(default_factory=list)
    outside: set[str] = field(default_factory=set)  # declared global or nonlocal
    children: list[Scope] = field(default_factory=list)

    def bind(self, name: str, pos: Pos) -> None:
        if name not in self.binds or pos < self.binds[name]:
            self.binds[name] = pos

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


def _pos(node: ast.AST) -> Pos:
    return (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))


def _end(node: ast.AST) -> Pos:
    return (getattr(node, "end_lineno", 0) or 0, getattr(node, "end_col_offset", 0) or 0)


class _Builder(ast.NodeVisitor):
    def __init__(self, root: ast.AST) -> None:
        self.scope = Scope(root, "module", None)
        self.root = self.scope
        self.bind_at: Pos | None = None  # where the statement being visited binds its targets

    def _enter(self, node: ast.AST, kind: str) -> Scope:
        s = Scope(node, kind, self.scope)
        self.scope.children.append(s)
        return s

    def _targets(self, targets: list[ast.expr], at: Pos) -> None:
        saved, self.bind_at = self.bind_at, at
        for t in targets:
            self.visit(t)
        self.bind_at = saved

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.scope.loads.append((node.id, _pos(node)))
        else:
            self.scope.bind(node.id, self.bind_at or _pos(node))

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        self._targets(node.targets, _end(node.value))

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):  # ``x += 1`` reads x first
            self.scope.loads.append((node.target.id, _pos(node.target)))
        self._targets([node.target], _end(node))

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.annotation)
        if node.value is not None:
            self.visit(node.value)
            self._targets([node.target], _end(node.value))
        elif not isinstance(node.target, ast.Name):
            self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        scope = self.scope
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent  # a walrus in a comprehension binds in the enclosing scope
        scope.bind(node.target.id, _end(node.value))

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._targets([node.target], _end(node.iter))
        for s in [*node.body, *node.orelse]:
            self.visit(s)

    visit_AsyncFor = visit_For

    def visit_withitem(self, node: ast.withitem) -> None:
        self.visit(node.context_expr)
        if node.optional_vars is not None:
            self._targets([node.optional_vars], _end(node.context_expr))

    def visit_alias(self, node: ast.alias) -> None:
        if node.name != "*":
            self.scope.bind((node.asname or node.name).split(".")[0], _pos(node))

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.scope.bind(node.name, _pos(node))
        for s in node.body:
            self.visit(s)

    def visit_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        self.scope.outside.update(node.names)

    visit_Nonlocal = visit_Global

    def _capture(self, name: str | None, node: ast.AST) -> None:
        if name:
            self.scope.bind(name, _pos(node))

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self._capture(node.name, node)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self._capture(node.name, node)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self._capture(node.rest, node)
        self.generic_visit(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, body: list) -> None:
        a = node.args
        for d in [*a.defaults, *(d for d in a.kw_defaults if d is not None)]:
            self.visit(d)
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, [a.vararg, a.kwarg])]
        if not isinstance(node, ast.Lambda):
            for x in [*node.decorator_list, *(p.annotation for p in params if p.annotation)]:
                self.visit(x)
            if node.returns is not None:
                self.visit(node.returns)
            self.scope.bind(node.name, _end(node))
        saved = self.scope
        self.scope = self._enter(node, "function")
        for p in params:
            self.scope.bind(p.arg, _ALWAYS)
        for s in body:
            self.visit(s)
        self.scope = saved

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._function(node, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, [node.body])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for x in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(x)
        saved = self.scope
        self.scope = self._enter(node, "class")
        for s in node.body:
            self.visit(s)
        self.scope = saved
        self.scope.bind(node.name, _end(node))

    def _comprehension(self, node: ast.AST, parts: list[ast.expr]) -> None:
        gens: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
        self.visit(gens[0].iter)  # evaluated in the enclosing scope
        saved = self.scope
        self.scope = self._enter(node, "comprehension")
        for k, g in enumerate(gens):
            if k:
                self.visit(g.iter)
            self._targets([g.target], _ALWAYS)
            for cond in g.ifs:
                self.visit(cond)
        for p in parts:
            self.visit(p)
        self.scope = saved

    def visit_ListComp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])


def scopes(tree: ast.AST) -> Scope:
    """The scope tree of a module (or of any node, read as if it were a module's body)."""
    b = _Builder(tree)
    if isinstance(tree, ast.Module):
        for s in tree.body:
            b.visit(s)
    else:
        b.visit(tree)
    return b.root


def _resolves(scope: Scope, name: str, pos: Pos, root: Scope) -> bool:
    """Whether reading ``name`` at ``pos`` in ``scope`` finds a binding (builtins included)."""
    if name in scope.outside:
        return (
            name in root.binds
            or name in BUILTINS
            or any(name in s.binds for s in _enclosing(scope) if s.kind == "function")
        )
    if name in scope.binds:
        ordered = scope.kind in ("function", "module")
        return not ordered or scope.binds[name] <= pos
    for s in _enclosing(scope):
        if s.kind != "class" and name in s.binds:
            return True
    return name in BUILTINS


def _enclosing(scope: Scope):
    s = scope.parent
    while s is not None:
        yield s
        s = s.parent


def undefined_names(tree: ast.AST) -> set[str]:
    """Names read where no binding reaches them, and ``self.attr`` reads of an attribute its
    class never sets: each is a NameError (or AttributeError) when that line runs.

    A local read before the function first binds it counts as undefined (UnboundLocalError);
    a function may read a module name bound further down (it runs later)."""
    root = scopes(tree)
    out: set[str] = set()
    for scope in root.walk():
        for name, pos in scope.loads:
            if not _resolves(scope, name, pos, root):
                out.add(name)
    out |= _unset_attributes(tree)
    return out


def _unset_attributes(tree: ast.AST) -> set[str]:
    """``self.x`` reads in a class without bases whose methods and body never bind ``x``."""
    out: set[str] = set()
    for cls in ast.walk(tree):
        if not isinstance(cls, ast.ClassDef) or cls.bases or cls.keywords:
            continue
        known = set(scopes(ast.Module(body=cls.body, type_ignores=[])).binds)
        reads: list[tuple[str, str]] = []
        for fn in cls.body:
            if not isinstance(fn, _DEFS) or not fn.args.args or _decorated_static(fn):
                continue
            me = fn.args.args[0].arg
            for n in ast.walk(fn):
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == me:
                    if isinstance(n.ctx, ast.Load):
                        reads.append((me, n.attr))
                    else:
                        known.add(n.attr)
                elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "setattr":
                    known.add("*")
        if "*" not in known:
            out |= {f"{me}.{attr}" for me, attr in reads if attr not in known and not attr.startswith("__")}
    return out


def _decorated_static(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list)


def names_bound(tree: ast.AST) -> set[str]:
    """Every name some scope of the module binds, plus builtins (a coarse first filter: the
    scope-by-scope check is ``undefined_names``)."""
    out: set[str] = set(BUILTINS)
    for scope in scopes(tree).walk():
        out |= set(scope.binds)
    return out


def module_bindings(body: list[ast.stmt]) -> set[str]:
    """Names these top-level statements bind at module level."""
    return set(scopes(ast.Module(body=body, type_ignores=[])).binds)


def free_names(node: ast.AST) -> set[str]:
    """Names ``node`` reads that nothing inside it binds: what it needs from around it.
    A top-level statement's own bindings (a loop variable, a def's parameters) are its own."""
    root = scopes(node)
    out: set[str] = set()
    for scope in root.walk():
        for name, _ in scope.loads:
            if name in scope.outside:
                if name not in root.binds:
                    out.add(name)
                continue
            chain = [scope, *_enclosing(scope)]
            if not any(name in s.binds for s in chain if s is scope or s.kind != "class"):
                out.add(name)
    return out


def problem(source: str, allowed_undefined: set[str] | frozenset[str] = frozenset()) -> str | None:
    """Why ``source`` is not an acceptable child program, or None when it is.

    ``allowed_undefined`` holds what the parent already reads unbound (``undefined_names`` of
    the parent): a child is refused only for reads it added."""
    # Module-level state is the search's call (--allow-module-state), checked where it records
    # a program; a generator only refuses what no run could accept.
    problems = check_source(source, allow_module_state=True)
    if problems:
        return problems[0]
    try:
        compile(source, "policy.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        return f"does not compile: {e}"
    tree = parse_python(source)
    missing = undefined_names(tree) - set(allowed_undefined)
    if missing:
        return f"undefined names: {', '.join(sorted(missing))}"
    entry, _ = entry_function(tree)
    if entry is not None and not any(
        isinstance(n, ast.Return) and n.value is not None for n in walk_function(entry)
    ):
        return "the policy never returns an action"
    return None
