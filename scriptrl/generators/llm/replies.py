"""Turning a model's reply into program source.

Models do not follow output instructions reliably, small ones least of all: they wrap the
program in prose, write two fenced blocks (the program and an example of calling it), stop
half-way through a fence when the token budget runs out, or answer with SEARCH/REPLACE
edits whose SEARCH text is not quite in the parent. Each of those is recovered here when it
can be done without guessing at intent; what cannot be recovered is reported with a reason
the repair prompt can show the model.

Nothing here executes the reply: it is parsed with ``ast`` only. Running it is the
sandbox's job.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from scriptrl.generators.ast_names import BUILTINS, free_names, module_bindings
from scriptrl.program import ALLOWED_IMPORTS, check_source
from scriptrl.program.parsing import parse_python

_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w+.-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.M | re.S)
_OPEN_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w+.-]*)[^\n]*\n", re.M)
_EDIT = re.compile(
    r"^[ \t]*<{5,9}[ \t]*SEARCH[ \t]*\n(.*?)^[ \t]*={5,9}[ \t]*\n(.*?)^[ \t]*>{5,9}[ \t]*REPLACE[ \t]*$",
    re.M | re.S,
)
_ENTRY = re.compile(r"^(def policy\s*\(|class Policy\b)", re.M)
_PY_TAGS = {"", "python", "py", "python3"}


@dataclass
class Parsed:
    """What a reply yielded: a program (perhaps still invalid) and how it was obtained."""

    source: str | None
    how: str  # "fenced" | "bare" | "edits" | "edits-fallback" | "none"
    problem: str | None = None  # why the program cannot be used; None when it passed check_source
    tidied: tuple[str, ...] = ()  # what was dropped from the reply's code, for the program's note

    @property
    def ok(self) -> bool:
        return self.source is not None and self.problem is None


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of every closed fence, plus an unclosed last one (a reply cut off
    by the token limit still carries most of a program)."""
    blocks = [(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(text)]
    last_end = 0
    for m in _FENCE.finditer(text):
        last_end = m.end()
    tail = _OPEN_FENCE.search(text, last_end)
    if tail is not None:
        blocks.append((tail.group(2).lower(), text[tail.end() :]))
    return blocks


def extract_code(text: str) -> tuple[str | None, str]:
    """The program in a reply and where it was found ("fenced", "bare" or "none")."""
    blocks = [(tag, body) for tag, body in fenced_blocks(text) if tag in _PY_TAGS and body.strip()]
    if blocks:
        with_entry = [body for _, body in blocks if _ENTRY.search(body)]
        # Several blocks: the one defining the entry point is the program, others are
        # examples or fragments. Among several such, the last is the model's final word.
        chosen = with_entry[-1] if with_entry else max((b for _, b in blocks), key=len)
        return chosen.strip("\n") + "\n", "fenced"
    m = _ENTRY.search(text)
    if m is None:
        return None, "none"
    # No fences: take from the first import or definition that precedes the entry point.
    lines = text.splitlines()
    start = text[: m.start()].count("\n")
    while start > 0 and re.match(r"^(import |from |[A-Z_][A-Z0-9_]* *=|@|\s*$|#)", lines[start - 1]):
        start -= 1
    return "\n".join(lines[start:]).strip("\n") + "\n", "bare"


def parse_edits(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _EDIT.finditer(text)]


class EditError(ValueError):
    """A SEARCH block that does not occur (exactly once) in the parent."""


def apply_edits(source: str, edits: list[tuple[str, str]]) -> str:
    """Apply SEARCH/REPLACE edits in order. A SEARCH text must occur exactly once, first
    verbatim, then line by line ignoring surrounding whitespace (models often re-indent);
    the replacement is re-indented by the difference they introduced."""
    out = source
    for k, (search, replace) in enumerate(edits, 1):
        if not search.strip():
            raise EditError(f"edit {k} has an empty SEARCH section")
        n = out.count(search)
        if n == 1:
            out = out.replace(search, replace, 1)
            continue
        if n > 1:
            raise EditError(f"the SEARCH text of edit {k} occurs {n} times in the program; it must be unique")
        out = _apply_loose(out, search, replace, k)
    return out


def _apply_loose(source: str, search: str, replace: str, k: int) -> str:
    src = source.splitlines(keepends=True)
    want = [ln.strip() for ln in search.strip("\n").splitlines()]
    hits = [i for i in range(len(src) - len(want) + 1) if [s.strip() for s in src[i : i + len(want)]] == want]
    if len(hits) != 1:
        first = want[0][:60]
        why = "does not occur" if not hits else f"occurs {len(hits)} times"
        raise EditError(f"the SEARCH text of edit {k} (starting '{first}') {why} in the program")
    i = hits[0]
    have_indent = _indent(src[i])
    got_indent = _indent(search.strip("\n").splitlines()[0])
    new_lines = []
    for line in replace.strip("\n").splitlines():
        if line.strip() and line.startswith(got_indent):
            line = have_indent + line[len(got_indent) :]
        new_lines.append(line + "\n")
    return "".join(src[:i] + new_lines + src[i + len(want) :])


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def tidy(source: str) -> tuple[str, tuple[str, ...]]:
    """Drop the harness code a model adds around the program: a ``__main__`` block, calls
    such as ``print(policy(obs))`` at top level, statements that use a module a policy may not
    import (``env = gym.make(...)``), and those imports once nothing else uses them. Only whole
    top-level statements go, never definitions: the program the model meant is kept as written,
    and one whose policy itself uses such a module still fails its check with that reason.
    A source that does not parse is returned as is."""
    try:
        tree = parse_python(source)
    except (SyntaxError, ValueError):
        return source, ()
    banned: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            banned.update((a.asname or a.name).split(".")[0] for a in node.names if not _allowed(a.name))
        elif isinstance(node, ast.ImportFrom) and (node.level or not _allowed(node.module or "")):
            banned.update(a.asname or a.name for a in node.names)
    entry_reads = _entry_reads(tree)
    drop: list[ast.stmt] = []
    dropped: list[str] = []
    for i, node in enumerate(tree.body):
        if isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom
        ):
            continue
        if _is_main_guard(node):
            drop.append(node)
            dropped.append("an `if __name__ == '__main__'` block")
        elif _names(node) & banned:
            drop.append(node)
            dropped.append(f"top-level `{_first_line(source, node)}`")
        elif isinstance(node, ast.Expr) and not (i == 0 and isinstance(node.value, ast.Constant)):
            if not _seeds_allowed_module(node):
                drop.append(node)
                dropped.append(f"top-level `{_first_line(source, node)}`")
        elif _runs_code(node) and not (_stored(node) & entry_reads):
            drop.append(node)  # computes something the policy never reads: an example run
            dropped.append(f"top-level `{_first_line(source, node)}`")
    # What is left may read a name whose only binding was just dropped (``env.reset()`` after
    # ``env = gym.make(...)`` went): it would fail on import, so it goes too, until nothing changes.
    while True:
        bound = module_bindings([n for n in tree.body if n not in drop])
        more = [
            n for n in tree.body if n not in drop and _runs_at_import(n) and free_names(n) - bound - BUILTINS
        ]
        if not more:
            break
        for node in more:
            drop.append(node)
            dropped.append(f"top-level `{_first_line(source, node)}` (reads a name nothing defines)")
    used = set().union(
        *(_names(n) for n in tree.body if n not in drop and not isinstance(n, ast.Import | ast.ImportFrom))
    )
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound = {(a.asname or a.name).split(".")[0] for a in node.names}
            if bound <= banned and not bound & used:
                drop.append(node)
                module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                dropped.append(f"unused import of {module}")
    if not drop:
        return source, ()
    lines = source.splitlines(keepends=True)
    remove: set[int] = set()
    for node in drop:
        remove.update(range(node.lineno - 1, node.end_lineno or node.lineno))
    text = "".join(ln for i, ln in enumerate(lines) if i not in remove)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n", tuple(dropped)


def _runs_at_import(node: ast.stmt) -> bool:
    return not isinstance(
        node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom
    )


def _allowed(module: str) -> bool:
    return module.split(".")[0] in ALLOWED_IMPORTS


def _entry_reads(tree: ast.Module) -> set[str]:
    """Global names the entry point can reach through the definitions it uses. A function's
    parameters and local variables are not global reads (a top-level ``obs = env.reset()``
    is not what ``policy(obs)`` reads); names are otherwise over-approximated, which only
    makes ``tidy`` keep more."""
    defs = {
        n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    todo = ["policy"] if "policy" in defs else ["Policy"] if "Policy" in defs else list(defs)
    seen: set[str] = set()
    reads: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        free = free_names(defs[name])
        reads |= free
        todo += [n for n in free if n in defs]
    return reads - set(defs)


def _runs_code(node: ast.stmt) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(node))


def _stored(node: ast.stmt) -> set[str]:
    """Names a top-level statement binds or writes into (``T[i] = ...`` writes into T)."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
        elif isinstance(n, ast.Subscript | ast.Attribute) and isinstance(n.ctx, ast.Store):
            base = n.value
            while isinstance(base, ast.Subscript | ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name):
                out.add(base.id)
        elif (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and isinstance(n.func.value, ast.Name)
        ):
            out.add(n.func.value.id)  # TABLE.append(...) fills TABLE
    return out


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _seeds_allowed_module(node: ast.Expr) -> bool:
    """``random.seed(0)`` or ``np.random.seed(0)``: side effects a program may mean to have
    (``env.seed(0)`` is harness code, and goes)."""
    call = node.value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "seed"):
        return False
    root = call.func.value
    while isinstance(root, ast.Attribute):
        root = root.value
    return isinstance(root, ast.Name) and root.id in {"random", "np", "numpy"}


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _first_line(source: str, node: ast.stmt) -> str:
    seg = ast.get_source_segment(source, node) or ""
    line = seg.splitlines()[0] if seg else "expression"
    return line if len(line) <= 50 else line[:47] + "..."


def interpret(text: str, parent: str | None = None) -> Parsed:
    """A reply as a program: edits applied to ``parent`` when it holds any, else the fenced
    (or bare) program; tidied; checked with ``check_source``."""
    if not text or not text.strip():
        return Parsed(None, "none", "the reply was empty")
    edits = parse_edits(text) if parent is not None else []
    how = "none"
    source = None
    edit_problem = None
    if edits:
        try:
            source, how = apply_edits(parent, edits), "edits"  # type: ignore[arg-type]
        except EditError as e:
            edit_problem = str(e)
    if source is None:
        stripped = _EDIT.sub("", text) if edits else text
        source, how = extract_code(stripped)
        if edits and source is not None:
            how = "edits-fallback"
    if source is None:
        problem = edit_problem or "the reply holds no Python program (expected one ```python fenced block)"
        return Parsed(None, how, problem)
    source, dropped = tidy(source)
    problems = check_source(source)
    return Parsed(source, how, problems[0] if problems else None, dropped)
