"""A policy program: its source, static validation, and a normalised identity.

Static checks exist to give a person (or a language model) a precise, early error:
a syntax error with its line, a missing entry point, an import outside the allow-list,
a dunder or underscore-attribute trick. They are a filter, not the security boundary;
the sandbox is (see ``scriptrl.sandbox``).
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from scriptrl.errors import UserError

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
        "sys", "os", "modules", "builtins", "importlib", "ctypes", "ctypeslib", "gc", "inspect",
        "subprocess", "socket", "shutil", "pathlib", "io", "types", "weakref", "threading",
        "signal", "mmap", "load", "save", "savez", "savez_compressed", "fromfile", "tofile",
        "memmap", "loadtxt", "savetxt", "genfromtxt", "DataSource", "system", "popen",
    }
)  # fmt: skip


class ProgramError(UserError):
    """A program that cannot be run, with the reason a person can act on."""


@dataclass(frozen=True)
class Program:
    """Python source defining ``policy(obs)`` or ``class Policy`` with ``reset(seed)`` and ``act(obs)``."""

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
            tree = ast.parse(self.source)
        except SyntaxError:
            return self.sha256
        _strip_docstrings(tree)
        return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()

    @property
    def entry_kind(self) -> str:
        """``"function"`` or ``"class"``; raises ProgramError when neither exists."""
        return entry_point(ast.parse(self.source), self.name)

    def validate(self) -> Program:
        """Raise ProgramError on the first problem; return self when the program may run."""
        problems = check_source(self.source, self.name)
        if problems:
            raise ProgramError(problems[0])
        return self


def check_source(source: str, name: str = "policy.py") -> list[str]:
    """Every static problem found, each a one-line message with its line number."""
    try:
        tree = ast.parse(source, filename=name)
    except SyntaxError as e:
        where = f"line {e.lineno}" + (f", column {e.offset}" if e.offset else "")
        return [f"{name}: syntax error at {where}: {e.msg} (fix the Python syntax)"]
    except ValueError as e:  # e.g. null bytes
        return [f"{name}: cannot be parsed: {e}"]
    problems: list[str] = []
    for node in ast.walk(tree):
        problems.extend(_node_problems(node, name))
    try:
        entry_point(tree, name)
    except ProgramError as e:
        problems.append(str(e))
    return problems


def entry_point(tree: ast.Module, name: str = "policy.py") -> str:
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    if "policy" in functions:
        fn = functions["policy"]
        if len(fn.args.args) + len(fn.args.posonlyargs) < 1 and fn.args.vararg is None:
            raise ProgramError(f"{name}: line {fn.lineno}: policy() must take one argument, obs")
        return "function"
    if "Policy" in classes:
        methods = {n.name for n in classes["Policy"].body if isinstance(n, ast.FunctionDef)}
        missing = [m for m in ("reset", "act") if m not in methods]
        if missing:
            raise ProgramError(
                f"{name}: class Policy lacks {' and '.join(missing)}(); a stateful policy needs reset(seed) and act(obs)"
            )
        return "class"
    raise ProgramError(
        f"{name}: no entry point: define `def policy(obs):` returning an action, "
        "or `class Policy` with reset(seed) and act(obs)"
    )


def _node_problems(node: ast.AST, name: str) -> list[str]:
    line = getattr(node, "lineno", "?")
    if isinstance(node, ast.Import):
        return [_import_problem(alias.name, line, name) for alias in node.names if not _allowed(alias.name)]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return [f"{name}: line {line}: relative import is not allowed (import only {_allowed_list()})"]
        if not _allowed(node.module or ""):
            return [_import_problem(node.module or "", line, name)]
        return []
    if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
        return [f"{name}: line {line}: attribute '.{node.attr}' is not allowed (it reaches the interpreter or files)"]
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        return [
            f"{name}: line {line}: attribute '.{node.attr}' is not allowed "
            "(underscore and dunder attributes reach interpreter internals)"
        ]
    if isinstance(node, ast.Name) and (node.id in FORBIDDEN_NAMES or node.id.startswith("__")):
        return [f"{name}: line {line}: '{node.id}' is not allowed in a policy (it reaches outside the program)"]
    if isinstance(node, ast.Global | ast.Nonlocal):
        bad = [n for n in node.names if n.startswith("__")]
        if bad:
            return [f"{name}: line {line}: '{bad[0]}' is not allowed in a policy"]
    return []


def _allowed(module: str) -> bool:
    return module.split(".")[0] in ALLOWED_IMPORTS


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
