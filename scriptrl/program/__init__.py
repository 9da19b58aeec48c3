"""A policy program: its source, static validation, and a normalised identity.

Static checks exist to give a person (or a language model) a precise, early error:
a syntax error with its line, a missing entry point, an import outside the allow-list,
an interpreter-internal dunder, state kept at module level between calls. They are a filter,
not the security boundary; the sandbox is (see ``scriptrl.sandbox``).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from scriptrl.errors import UserError
from scriptrl.program.module_state import module_state_problems
from scriptrl.program.parsing import parse_python

#: Modules a program may import. ``random`` is seeded by the evaluator, so it stays deterministic.
ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {
        "math",
        "numpy",
        "collections",
        "itertools",
        "functools",
        "statistics",
        "dataclasses",
        "typing",
        "enum",
        "random",
        "__future__",
    }
)

#: Builtins that reach outside the program or defeat static reading of it.
FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "memoryview",
        "help",
        "exit",
        "quit",
    }
)


#: Attributes that lead from an allowed module to the interpreter or the machine
#: (``statistics.sys.modules["os"]``, ``numpy.ctypeslib``, numpy's file input/output).
FORBIDDEN_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "sys",
        "os",
        "modules",
        "builtins",
        "importlib",
        "ctypes",
        "ctypeslib",
        "gc",
        "inspect",
        "subprocess",
        "socket",
        "shutil",
        "pathlib",
        "io",
        "types",
        "weakref",
        "threading",
        "signal",
        "mmap",
        "load",
        "save",
        "savez",
        "savez_compressed",
        "fromfile",
        "tofile",
        "memmap",
        "loadtxt",
        "savetxt",
        "genfromtxt",
        "DataSource",
        "system",
        "popen",
        # frames, code objects and tracebacks: a generator's gi_frame.f_globals is the program's
        # globals, its f_back the caller's
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "f_trace",
        "tb_frame",
        "tb_next",
        "co_code",
        "co_consts",
        "co_names",
    }
)

#: Dunder attributes that only name ordinary protocol methods (``super().__init__()``,
#: ``type(x).__name__``); every other dunder attribute (``__class__``, ``__subclasses__``,
#: ``__globals__``, ``__dict__``, ``__getattribute__``, ``__code__``, ...) reaches the interpreter.
ORDINARY_DUNDERS: frozenset[str] = frozenset(
    {
        "__init__",
        "__post_init__",
        "__call__",
        "__len__",
        "__iter__",
        "__next__",
        "__getitem__",
        "__setitem__",
        "__contains__",
        "__repr__",
        "__str__",
        "__eq__",
        "__ne__",
        "__lt__",
        "__le__",
        "__gt__",
        "__ge__",
        "__hash__",
        "__bool__",
        "__add__",
        "__sub__",
        "__mul__",
        "__truediv__",
        "__floordiv__",
        "__mod__",
        "__pow__",
        "__neg__",
        "__pos__",
        "__abs__",
        "__radd__",
        "__rsub__",
        "__rmul__",
        "__rtruediv__",
        "__matmul__",
        "__enter__",
        "__exit__",
        "__name__",
        "__float__",
        "__int__",
        "__round__",
    }
)


class ProgramError(UserError):
    """A program that cannot be run, with the reason a person can act on."""


@dataclass(frozen=True)
class Program:
    """Python source defining ``policy(obs)`` or ``class Policy`` with ``reset(seed)`` (or ``reset()``)
    and ``act(obs)``."""

    source: str
    name: str = "policy.py"
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_file(cls, path: str | Path) -> Program:
        p = Path(path)
        if not p.exists():
            raise UserError(f"policy file not found: {p} (check the path)")
        if not p.is_file():
            raise UserError(f"not a file: {p} (pass a .py file defining policy(obs))")
        try:
            source = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{p} is not UTF-8 text (save it as UTF-8 Python source)") from None
        return cls(source=source, name=p.name)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()

    @property
    def normalized_hash(self) -> str:
        """Equal for programs that differ only in comments, docstrings or formatting,
        so the search never pays twice for the same behaviour."""
        try:
            tree = parse_python(self.source)
        except SyntaxError:
            return self.sha256
        _strip_docstrings(tree)
        return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()

    @property
    def entry_kind(self) -> str:
        """``"function"`` or ``"class"``; raises ProgramError when neither exists."""
        return entry_point(parse_python(self.source), self.name)

    def validate(self, allow_module_state: bool = False) -> Program:
        """Raise ProgramError naming every problem (one line each); return self when the program may run."""
        problems = check_source(self.source, self.name, allow_module_state=allow_module_state)
        if problems:
            raise ProgramError("\n".join(problems))
        return self

    def module_state(self) -> list[str]:
        """Where the program keeps state between calls outside ``class Policy`` (warnings
        under ``--allow-module-state``); empty when it cannot be parsed."""
        try:
            return module_state_problems(parse_python(self.source), self.name)
        except (SyntaxError, ValueError):
            return []


def check_source(source: str, name: str = "policy.py", allow_module_state: bool = False) -> list[str]:
    """Every static problem found, each a one-line message with its line number, in line order.

    Module-level state kept between calls is a problem unless ``allow_module_state``: episodes
    run interleaved in one worker, so it would make a score depend on episode order.

    The verdict is a pure function of its arguments and costs milliseconds (the module-state
    analysis walks the tree several times), while a search checks one program many times: the
    generator, the recorder, and every evaluation of it (each race chunk, each confirmation). So
    it is remembered per process; the caller gets its own list."""
    return list(_checked(source, name, allow_module_state))


@functools.lru_cache(maxsize=2048)
def _checked(source: str, name: str, allow_module_state: bool) -> tuple[str, ...]:
    return tuple(_check_source(source, name, allow_module_state))


def _check_source(source: str, name: str, allow_module_state: bool) -> list[str]:
    try:
        tree = parse_python(source, filename=name)
    except SyntaxError as e:
        where = f"line {e.lineno}" + (f", column {e.offset}" if e.offset else "")
        return [f"{name}: syntax error at {where}: {e.msg} (fix the Python syntax)"]
    except ValueError as e:  # e.g. null bytes
        return [f"{name}: cannot be parsed: {e}"]
    modules = _module_names(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        found.extend((getattr(node, "lineno", 0), p) for p in _node_problems(node, name, modules))
    problems = [p for _, p in sorted(found, key=lambda lp: lp[0])]
    if not allow_module_state:
        problems.extend(_module_state(tree, source, name))
    try:
        entry_point(tree, name)
    except ProgramError as e:
        problems.append(str(e))
    return list(dict.fromkeys(problems))


# A number literal that is not part of a name (x1) or an attribute (a.b): what constant tuning changes.
_NUMBER = re.compile(r"(?<![\w.])\d[\d_]*(?:\.[\d_]*)?(?:[eE][+-]?\d+)?[jJ]?")
_STATELESS: set[tuple[str, str]] = set()  # programs, numbers blanked, found free of module state


def _module_state(tree: ast.Module, source: str, name: str) -> list[str]:
    """The module-state problems of the program. Where a program keeps state does not depend on
    the values of its number literals, and a tuning campaign evaluates hundreds of programs that
    differ only in those: a layout (source with numbers blanked, lines kept) once found free of
    state is not analysed again. A layout with problems is analysed every time, as its messages
    quote the program."""
    key = (_NUMBER.sub("0", source), name)
    if key in _STATELESS:
        return []
    found = module_state_problems(tree, name)
    if not found:
        if len(_STATELESS) >= 4096:
            _STATELESS.clear()
        _STATELESS.add(key)
    return found


def entry_point(tree: ast.Module, name: str = "policy.py") -> str:
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    if "policy" in functions:
        fn = functions["policy"]
        if len(fn.args.args) + len(fn.args.posonlyargs) < 1 and fn.args.vararg is None:
            raise ProgramError(f"{name}: line {fn.lineno}: policy() must take one argument, obs")
        return "function"
    if "Policy" in classes:
        methods = _class_methods(classes["Policy"], classes, set())
        missing = [m for m in ("reset", "act") if m not in methods]
        if missing:
            raise ProgramError(
                f"{name}: line {classes['Policy'].lineno}: class Policy lacks {' and '.join(missing)}() "
                "(in its body or a base class of this file); a stateful policy needs reset(seed) and act(obs)"
            )
        return "class"
    raise ProgramError(
        f"{name}: no entry point: define `def policy(obs):` returning an action, "
        "or `class Policy` with reset(seed) and act(obs)"
    )


def _class_methods(cls: ast.ClassDef, classes: dict[str, ast.ClassDef], seen: set[str]) -> set[str]:
    """Names a class defines or inherits from base classes defined in the same file."""
    seen.add(cls.name)
    names = {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    names |= {
        t.id for n in cls.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
    }
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in classes and base.id not in seen:
            names |= _class_methods(classes[base.id], classes, seen)
    return names


def _module_names(tree: ast.Module) -> set[str]:
    """Names bound to imported modules or their members: their private attributes stay refused."""
    return {
        (a.asname or a.name).split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }


def _is_dunder(text: str) -> bool:
    return len(text) > 4 and text.startswith("__") and text.endswith("__")


def _node_problems(node: ast.AST, name: str, modules: set[str]) -> list[str]:
    line = getattr(node, "lineno", "?")
    if isinstance(node, ast.Import):
        return [_import_problem(a.name, line, name) for a in node.names if not _allowed(a.name)]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return [f"{name}: line {line}: relative import is not allowed (import only {_allowed_list()})"]
        if not _allowed(node.module or ""):
            return [_import_problem(node.module or "", line, name)]
        return [
            f"{name}: line {line}: importing the private name '{a.name}' is not allowed "
            "(use the module's public names)"
            for a in node.names
            if a.name.startswith("_")
        ]
    if isinstance(node, ast.Attribute):
        return _attribute_problems(node, name, modules)
    if isinstance(node, ast.Name) and (node.id in FORBIDDEN_NAMES or _is_dunder(node.id)):
        return [
            f"{name}: line {line}: '{node.id}' is not allowed in a policy (it reaches outside the program)"
        ]
    if isinstance(node, ast.Global | ast.Nonlocal):
        bad = [n for n in node.names if _is_dunder(n)]
        if bad:
            return [f"{name}: line {line}: '{bad[0]}' is not allowed in a policy"]
    return []


def _attribute_problems(node: ast.Attribute, name: str, modules: set[str]) -> list[str]:
    """Attributes of the program's own objects are its business, ``self._config`` included;
    interpreter internals (dunders beyond the protocol methods) and the private parts of
    imported modules are not."""
    line, attr = node.lineno, node.attr
    if attr in FORBIDDEN_ATTRIBUTES:
        return [
            f"{name}: line {line}: attribute '.{attr}' is not allowed (it reaches the interpreter or files)"
        ]
    if _is_dunder(attr) and attr not in ORDINARY_DUNDERS:
        return [
            f"{name}: line {line}: attribute '.{attr}' is not allowed "
            "(dunder attributes other than protocol methods such as __init__ reach interpreter internals)"
        ]
    if attr.startswith("_") and not _is_dunder(attr) and _chain_root(node) in modules:
        return [
            f"{name}: line {line}: attribute '.{attr}' is not allowed "
            "(private parts of an imported module; use its public names)"
        ]
    return []


def _chain_root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _allowed(module: str) -> bool:
    parts = module.split(".")
    return parts[0] in ALLOWED_IMPORTS and not any(p.startswith("_") for p in parts[1:])


def _allowed_list() -> str:
    return ", ".join(sorted(ALLOWED_IMPORTS - {"__future__"}))


def _import_problem(module: str, line: object, name: str) -> str:
    return f"{name}: line {line}: import of '{module}' is not allowed (allowed: {_allowed_list()})"


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
