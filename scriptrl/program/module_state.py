"""Finding state that a policy keeps between calls outside ``class Policy``.

The evaluator runs many episodes interleaved in one worker process, so anything a program
keeps at module level (a step counter in a global dict, a planner object, a list default
argument, a list on the class shared by every instance) is shared by episodes that happen
to run together: the score then depends on episode order and nothing says so. These checks
find the common forms statically so a person is told, with the line and the fix, instead of
getting a silently wrong score. Constant tables that are only read are fine. Like the other
static checks this is a filter for honest mistakes, not a proof: state reached through an
alias is not seen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeGuard, cast

#: Methods that change the object they are called on (lists, dicts, sets, deques, arrays).
MUTATING_METHODS: frozenset[str] = frozenset(
    {
        "append",
        "appendleft",
        "extend",
        "extendleft",
        "insert",
        "pop",
        "popleft",
        "popitem",
        "remove",
        "clear",
        "update",
        "add",
        "discard",
        "setdefault",
        "sort",
        "reverse",
        "rotate",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
        "fill",
        "put",
        "itemset",
        "resize",
    }
)

#: Calls whose result is a fresh mutable container.
_CONTAINER_CALLS: frozenset[str] = frozenset(
    {
        "list",
        "dict",
        "set",
        "deque",
        "defaultdict",
        "Counter",
        "OrderedDict",
        "bytearray",
        "zeros",
        "ones",
        "empty",
        "full",
        "array",
    }
)

FIX = (
    "keep per-episode state in `class Policy:` with `def reset(self, seed):` (sets self.t = 0 at each "
    "episode's start) and `def act(self, obs):` (reads and updates self.t), or pass --allow-module-state"
)

_FUNCTION = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


@dataclass(frozen=True)
class StateUse:
    """One place where a program keeps state between calls."""

    line: int
    what: str

    def message(self, name: str) -> str:
        return (
            f"{name}: line {self.line}: {self.what}, which persists across calls and across episodes "
            f"(they run interleaved), so the score would depend on episode order; {FIX}"
        )


def module_state_problems(tree: ast.Module, name: str = "policy.py") -> list[str]:
    """One message per place where the program keeps state outside ``class Policy``."""
    return [use.message(name) for use in sorted(set(find_state(tree)), key=lambda u: (u.line, u.what))]


def find_state(tree: ast.Module) -> Iterator[StateUse]:
    imported = _imported_names(tree)
    module_names = _module_bindings(tree) - imported
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    changing = {c: _mutating_methods(node, classes) for c, node in classes.items()}
    instances = _module_instances(tree, {c: m for c, m in changing.items() if m})
    import_time = _import_time_functions(tree)
    for fn, outer_locals in _functions(tree, frozenset()):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) and fn in import_time:
            continue
        local = outer_locals | _local_names(fn)
        shared = module_names - local
        yield from _changes(fn, shared, instances)
        yield from _global_rebinds(fn)
        yield from _mutable_defaults(fn)
    for node in classes.values():
        yield from _shared_class_attributes(node)


# --- what a function changes ----------------------------------------------------------------
def _changes(fn: ast.AST, shared: set[str], instances: dict[str, tuple[str, set[str]]]) -> Iterator[StateUse]:
    label = _label(fn)
    for node in _own_nodes(fn):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for t in targets:
            for part in _flatten(t):
                root = _root(part) if isinstance(part, ast.Attribute | ast.Subscript) else None
                if root in shared:
                    yield StateUse(
                        getattr(node, "lineno", 0),
                        f"{label} changes module-level '{root}' ({_short(part)} = ...)",
                    )
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute):
                root = _root(f.value)
                if root in shared and f.attr in MUTATING_METHODS:
                    yield StateUse(node.lineno, f"{label} changes module-level '{root}' ({_short(f)}(...))")
                elif root in instances and isinstance(f.value, ast.Name) and f.attr in instances[root][1]:
                    yield StateUse(
                        node.lineno,
                        f"{label} calls {root}.{f.attr}(), which changes the module-level "
                        f"{instances[root][0]} object",
                    )
            elif isinstance(f, ast.Name) and f.id in instances and "__call__" in instances[f.id][1]:
                yield StateUse(
                    node.lineno,
                    f"{label} calls {f.id}(), which changes the module-level {instances[f.id][0]} object",
                )
            elif isinstance(f, ast.Name) and f.id == "next" and node.args:
                root = _root(node.args[0])
                if root in shared:
                    yield StateUse(node.lineno, f"{label} advances the module-level iterator '{root}'")


def _global_rebinds(fn: ast.AST) -> Iterator[StateUse]:
    declared: dict[str, int] = {}
    for node in _own_nodes(fn):
        if isinstance(node, ast.Global):
            for n in node.names:
                declared.setdefault(n, node.lineno)
    if not declared:
        return
    for n in sorted(declared.keys() & _stored_names(fn)):
        yield StateUse(declared[n], f"`global {n}` in {_label(fn)} rebinds a module-level name")


def _mutable_defaults(fn: ast.AST) -> Iterator[StateUse]:
    if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
        return
    args = fn.args
    positional = args.posonlyargs + args.args
    pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
    mutable = {a.arg: d for a, d in pairs if _is_container(d)}
    if not mutable:
        return
    for use in _changes(fn, set(mutable), {}):
        root = use.what.split("'")[1]
        yield StateUse(mutable[root].lineno, f"{_label(fn)} keeps state in its default argument '{root}'")


def _shared_class_attributes(cls: ast.ClassDef) -> Iterator[StateUse]:
    """A container in the class body is one object shared by every instance (every episode)
    unless each instance assigns its own."""
    containers = {}
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and _is_container(stmt.value):
            containers.update({t.id: stmt.lineno for t in stmt.targets if isinstance(t, ast.Name)})
        elif (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and _is_container(stmt.value)
        ):
            if not any(
                _decorator_name(d) == "dataclass" for d in cls.decorator_list
            ):  # dataclasses refuse these
                containers[stmt.target.id] = stmt.lineno
    if not containers:
        return
    assigned, changed = set(), set()
    for method in cls.body:
        if not isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(method):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if _is_self_attr(t):
                        assigned.add(t.attr)
            for attr in _self_attrs_changed(node):
                changed.add(attr)
    for attr in sorted((changed - assigned) & containers.keys()):
        yield StateUse(
            containers[attr],
            f"class {cls.name} keeps '{attr}' in the class body, "
            "one object shared by every instance and episode "
            f"(assign self.{attr} in reset())",
        )


# --- which objects and names ------------------------------------------------------------------
def _mutating_methods(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> set[str]:
    """Methods (the constructor aside) that change the instance, directly or by calling one
    that does; methods of base classes in the same file count."""
    methods: dict[str, ast.AST] = {}
    todo = [cls]
    while todo:
        c = todo.pop()
        for m in c.body:
            if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef):
                methods.setdefault(m.name, m)
        todo += [
            classes[b.id]
            for b in c.bases
            if isinstance(b, ast.Name) and b.id in classes and classes[b.id] is not c
        ]
    changing = {name for name, m in methods.items() if name not in _CONSTRUCTORS and _changes_self(m)}
    grew = True
    while grew:
        calls = {
            name for name, m in methods.items() if name not in _CONSTRUCTORS and _self_calls(m) & changing
        }
        grew = not calls <= changing
        changing |= calls
    return changing


_CONSTRUCTORS = ("__init__", "__post_init__", "__new__")


def _changes_self(method: ast.AST) -> bool:
    for node in ast.walk(method):
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else ([node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else [])
        )
        if any(_root(t) == "self" and not isinstance(t, ast.Name) for t in targets):
            return True
        if any(True for _ in _self_attrs_changed(node)):
            return True
    return False


def _self_calls(method: ast.AST) -> set[str]:
    return {n.func.attr for n in ast.walk(method) if isinstance(n, ast.Call) and _is_self_attr(n.func)}


def _self_attrs_changed(node: ast.AST) -> Iterator[str]:
    """Attributes of ``self`` changed in place by ``node`` (``self.h.append``, ``self.h[0] = ``)."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in MUTATING_METHODS
    ):
        base = node.func.value
        if _is_self_attr(base):
            yield base.attr
    targets = (
        node.targets
        if isinstance(node, ast.Assign)
        else [node.target]
        if isinstance(node, ast.AugAssign)
        else []
    )
    for t in targets:
        if isinstance(t, ast.Subscript) and _is_self_attr(t.value):
            yield t.value.attr
        if isinstance(node, ast.AugAssign) and _is_self_attr(t):
            yield t.attr  # list += rebinds, but after changing the shared list


def _module_instances(tree: ast.Module, stateful: dict[str, set[str]]) -> dict[str, tuple[str, set[str]]]:
    """Module-level names bound to an instance of a class of this file that changes itself,
    with the class and its methods that change it."""
    found = {}
    for stmt in tree.body:
        value = stmt.value if isinstance(stmt, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in stateful:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [cast(ast.AnnAssign, stmt).target]
            cls = value.func.id
            found.update({t.id: (cls, stateful[cls]) for t in targets if isinstance(t, ast.Name)})
    return found


def _module_bindings(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(stmt.name)
        elif not isinstance(stmt, ast.Import | ast.ImportFrom):
            names |= {
                n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }
    return names


def _imported_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _import_time_functions(tree: ast.Module) -> set[ast.AST]:
    """Module-level functions that only module-level code calls (building a table at import)
    run once, so what they change is not state kept between calls."""
    called_inside: set[str] = set()
    for fn, _ in _functions(tree, frozenset()):
        called_inside |= {
            n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
        }
    top = [s for s in tree.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
    return {s for s in top if s.name != "policy" and s.name not in called_inside}


def _functions(node: ast.AST, outer: frozenset[str]) -> Iterator[tuple[ast.AST, frozenset[str]]]:
    """Every function and lambda with the local names of the functions around it (class
    bodies are not scopes for the methods inside them)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, _FUNCTION):
            yield child, outer
            yield from _functions(child, outer | _local_names(child))
        else:
            yield from _functions(child, outer)


def _own_nodes(fn: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function's body, not those of functions nested in it."""
    todo = list(ast.iter_child_nodes(fn))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (*_FUNCTION, ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(node))


def _local_names(fn: ast.AST) -> set[str]:
    args = fn.args  # type: ignore[attr-defined]
    params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    declared = {
        n for node in _own_nodes(fn) if isinstance(node, ast.Global | ast.Nonlocal) for n in node.names
    }
    return (params | _stored_names(fn)) - declared


def _stored_names(fn: ast.AST) -> set[str]:
    names = set()
    for node in _own_nodes(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _flatten(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, ast.Tuple | ast.List):
        return [p for e in target.elts for p in _flatten(e)]
    if isinstance(target, ast.Starred):
        return _flatten(target.value)
    return [target]


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_self_attr(node: ast.AST) -> TypeGuard[ast.Attribute]:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def _is_container(node: ast.AST | None) -> bool:
    if isinstance(node, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp):
        return True
    if isinstance(node, ast.Call):
        f = node.func
        return (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)) in _CONTAINER_CALLS
    return False


def _decorator_name(node: ast.expr) -> str | None:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)


def _label(fn: ast.AST) -> str:
    return f"{fn.name}()" if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) else "a lambda"


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 40 else text[:37] + "..."
