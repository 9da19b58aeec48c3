"""Writing an edited syntax tree back as source by splicing into the original text.

Tree edits (new conditions, removed branches, crossover) used to re-render the whole module,
so a derived program lost every comment, a licence header included. ``render_edit`` keeps
the original text of every statement and expression the edit left alone and writes afresh
only what changed: an expression in place of the old one's span, or whole lines for
statements added, removed or moved (a moved statement keeps its own text and comments,
re-indented). The result is checked: it must parse to the edited tree (signs tidied), or
the whole tree is rendered afresh instead. Nothing is lost that was not edited away.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Sequence

from scriptrl.generators.ast_render import fresh_statement, render, tidy_signs
from scriptrl.generators.ast_text import Edit, SourceText, apply_edits
from scriptrl.program.parsing import parse_python

Comments = dict[str, tuple[str, str]]

# Slots where an expression needs no parentheses whatever it is.
_FREE_SLOTS = {
    (ast.Assign, "value"),
    (ast.AugAssign, "value"),
    (ast.AnnAssign, "value"),
    (ast.Return, "value"),
    (ast.Expr, "value"),
    (ast.If, "test"),
    (ast.While, "test"),
    (ast.Call, "args"),
    (ast.keyword, "value"),
    (ast.List, "elts"),
    (ast.Tuple, "elts"),
    (ast.Set, "elts"),
    (ast.Dict, "keys"),
    (ast.Dict, "values"),
    (ast.Subscript, "slice"),
    (ast.Assert, "test"),
    (ast.comprehension, "iter"),
}
_ATOMS = (
    ast.Name,
    ast.Constant,
    ast.Attribute,
    ast.Subscript,
    ast.Call,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Set,
)


class _Whole(Exception):
    """The edit cannot be spliced at this level: the enclosing statement is written afresh."""


class _Splicer:
    def __init__(
        self, source: str, original: ast.Module, comments: Comments | None, donors: Sequence[str] = ()
    ) -> None:
        self.st = SourceText(source)
        self.src = source
        self.comments = comments
        self.originals = {_key(n): n for n in ast.walk(original) if isinstance(n, ast.stmt)}
        self.donors = [_Splicer(d, parse_python(d), comments) for d in donors]
        self.floors: dict[ast.AST, int] = {}  # how far up a statement's own comment lines may reach
        for owner in ast.walk(original):
            for field in ("body", "orelse", "finalbody"):
                block = getattr(owner, field, None)
                if not (isinstance(block, list) and _stmts(block)):
                    continue
                if not isinstance(owner, ast.Module):  # a file's header comments stay where they are
                    self.floors[block[0]] = self.line_end(self.st.span(owner)[0])
                for prev, stmt in zip(block, block[1:], strict=False):
                    self.floors[stmt] = self.end(prev)

    # -- text positions --

    def start(self, node: ast.AST) -> int:
        decorators = getattr(node, "decorator_list", None)
        return self.st.span(decorators[0] if decorators else node)[0] - (1 if decorators else 0)

    def end(self, node: ast.AST) -> int:
        return self.st.span(node)[1]

    def line_start(self, offset: int) -> int:
        return self.src.rfind("\n", 0, offset) + 1

    def line_end(self, offset: int) -> int:
        k = self.src.find("\n", offset)
        return len(self.src) if k < 0 else k + 1

    def own_lines(self, node: ast.stmt) -> tuple[int, int]:
        """The whole lines ``node`` occupies; _Whole when it shares a line with other code."""
        a, b = self.start(node), self.end(node)
        before = self.src[self.line_start(a) : a]
        after = self.src[b : self.line_end(b)].strip()
        if before.strip() or (after and not after.startswith("#")):
            raise _Whole
        return self.line_start(a), self.line_end(b)

    # -- diffing --

    def diff(self, old: ast.AST, new: ast.AST, free: bool) -> list[Edit]:
        if ast.dump(old) == ast.dump(new):
            return []
        if type(old) is not type(new) or not _compatible(old, new):
            return self.replace(old, new, free)
        edits: list[Edit] = []
        try:
            for name, ov in ast.iter_fields(old):
                nv = getattr(new, name)
                slot_free = (type(old), name) in _FREE_SLOTS
                if isinstance(ov, list) and (
                    name in ("body", "orelse", "finalbody") or _stmts(ov) or _stmts(nv)
                ):
                    edits += self.block(ov, nv, name == "orelse")
                elif isinstance(ov, list):
                    for x, y in zip(ov, nv, strict=True):
                        if isinstance(x, ast.AST) and hasattr(x, "lineno"):
                            edits += self.diff(x, y, slot_free)
                elif isinstance(ov, ast.AST) and hasattr(ov, "lineno"):
                    edits += self.diff(ov, nv, slot_free)
        except _Whole:
            if isinstance(old, ast.Module):
                raise
            return self.replace(old, new, free)
        return edits

    def replace(self, old: ast.AST, new: ast.AST, free: bool) -> list[Edit]:
        if isinstance(old, ast.Module) or not hasattr(old, "lineno"):
            raise _Whole
        if isinstance(old, ast.stmt):
            a, b = self.start(old), self.end(old)
            indent = self.src[self.line_start(a) : a]
            text = self.statement_text(new, indent)  # type: ignore[arg-type]
            if indent.strip() and "\n" in text:
                raise _Whole
            return [(a, b, text[len(indent) :].rstrip("\n"))]
        a, b = self.st.span(old)
        text = ast.unparse(tidy_signs(new))
        wrapped = self.src[a - 1 : a] == "(" and self.src[b : b + 1] == ")"
        if not (free or wrapped or isinstance(new, _ATOMS)):
            text = f"({text})"
        return [(a, b, text)]

    def statement_text(self, node: ast.stmt, indent: str, region: tuple[int, int] | None = None) -> str:
        """Lines for ``node`` at ``indent``: its original text when it is an unchanged statement
        of the original (moved), else written afresh."""
        orig = self.originals.get(_key(node))
        if orig is not None:
            a, b = self.own_lines(orig)
            if region is not None and region[0] <= a < region[1]:
                a = self._leading_comments(a, region[0])
            return _reindent(self.src[a:b], _indent_of(self.src[self.line_start(self.start(orig)) :]), indent)
        for donor in self.donors:
            text = donor.donated_text(node, indent)
            if text is not None:
                return text
        text = fresh_statement(node, self.comments)
        return "".join(f"{indent}{line}\n" if line.strip() else "\n" for line in text.split("\n"))

    def donated_text(self, node: ast.stmt, indent: str) -> str | None:
        """A statement copied from this (donor) program: its lines and the comment lines just
        above it, re-indented; None when it is not one of ours or shares its lines."""
        orig = self.originals.get(_key(node))
        if orig is None:
            return None
        try:
            a, b = self.own_lines(orig)
        except _Whole:
            return None
        a = self._leading_comments(a, self.floors.get(orig, a))
        return _reindent(self.src[a:b], _indent_of(self.src[self.line_start(self.start(orig)) :]), indent)

    def _leading_comments(self, a: int, floor: int) -> int:
        """Extend a moved statement's lines upwards over its own comment lines inside ``floor``."""
        while a > floor:
            prev = self.line_start(a - 1)
            if prev < floor or not self.src[prev:a].strip().startswith("#"):
                break
            a = prev
        return a

    def block(self, old: list[ast.stmt], new: list[ast.stmt], orelse: bool) -> list[Edit]:
        if not old and not new:
            return []
        if not old or not new:
            raise _Whole  # an else: added or removed: the header changes
        if orelse and len(old) == 1 and self.src[self.start(old[0]) :].startswith("elif"):
            if not (len(new) == 1 and isinstance(new[0], ast.If) and _same_place(old[0], new[0])):
                raise _Whole
        a0 = self.start(old[0])
        indent = self.src[self.line_start(a0) : a0]
        if indent.strip():
            raise _Whole  # a one-line block (``if x: return 1``)
        edits: list[Edit] = []
        matcher = difflib.SequenceMatcher(
            None, [_key(s) for s in old], [_key(s) for s in new], autojunk=False
        )
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                continue
            pairs = list(zip(old[i1:i2], new[j1:j2], strict=False))
            if i2 - i1 == j2 - j1 and all(_same_place(x, y) for x, y in pairs):
                for x, y in pairs:
                    edits += self.diff(x, y, True)
                continue
            if i1 < i2:
                region = (self.own_lines(old[i1])[0], self.own_lines(old[i2 - 1])[1])
            else:
                at = self.own_lines(old[i1])[0] if i1 < len(old) else self.own_lines(old[-1])[1]
                region = (at, at)
            parts = [self.moved_or_mutated(old, y, indent, region) for y in new[j1:j2]]
            edits.append((*region, "".join(parts)))
        return edits

    def moved_or_mutated(
        self, old: list[ast.stmt], new: ast.stmt, indent: str, region: tuple[int, int]
    ) -> str:
        for x in old:
            if (
                _same_place(x, new)
                and region[0] <= self.start(x) < region[1]
                and _key(new) not in self.originals
            ):
                a, b = self.own_lines(x)
                inner = [(s - a, e - a, t) for s, e, t in self.diff(x, new, True)]
                return apply_edits(self.src[a:b], inner)
        return self.statement_text(new, indent, region)


def _key(node: ast.AST) -> str:
    return ast.dump(node, include_attributes=True)


def _same_place(x: ast.AST, y: ast.AST) -> bool:
    return type(x) is type(y) and (x.lineno, x.col_offset) == (  # type: ignore[attr-defined]
        getattr(y, "lineno", None),
        getattr(y, "col_offset", None),
    )


def _stmts(items: list) -> bool:
    return bool(items) and isinstance(items[0], ast.stmt)


def _compatible(old: ast.AST, new: ast.AST) -> bool:
    """Whether the fields that are not positioned nodes agree (names, operators, list lengths)."""
    for name, ov in ast.iter_fields(old):
        nv = getattr(new, name, None)
        if isinstance(ov, list):
            if not isinstance(nv, list):
                return False
            if name in ("body", "orelse", "finalbody") or _stmts(ov) or _stmts(nv):
                continue
            if len(ov) != len(nv) or not all(_compatible_item(x, y) for x, y in zip(ov, nv, strict=True)):
                return False
        elif not _compatible_item(ov, nv):
            return False
    return True


def _compatible_item(x: object, y: object) -> bool:
    if isinstance(x, ast.AST) and hasattr(x, "lineno"):
        return isinstance(y, ast.AST)
    if isinstance(x, ast.AST) or isinstance(y, ast.AST):
        return type(x) is type(y) and ast.dump(x) == ast.dump(y)  # type: ignore[arg-type]
    return x == y and type(x) is type(y)


def _indent_of(text: str) -> str:
    return text[: len(text) - len(text.lstrip(" \t"))]


def _reindent(text: str, old: str, new: str) -> str:
    if old == new:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(new + ln[len(old) :] if ln.startswith(old) and ln.strip() else ln for ln in lines)


def _normal(tree: ast.AST) -> str:
    return ast.dump(tidy_signs(tree))


def render_edit(
    source: str, tree: ast.Module, comments: Comments | None = None, donors: Sequence[str] = ()
) -> str:
    """Source for ``tree``, an edit of ``source``'s syntax tree, keeping ``source``'s text
    (comments, docstrings, layout) wherever the edit left it alone.

    ``donors`` are the sources of other programs whose statements the edit copied in
    (crossover deep-copies them, positions included): such a statement keeps its own text
    and the comment lines just above it.

    A tree identical to the source's is rendered afresh with ``render`` (that is a template's
    first rendering: signs tidied, component comments added); so is one the splice cannot
    reproduce exactly. ``comments`` are added to lines written afresh that read a component."""
    try:
        original = parse_python(source)
    except (SyntaxError, ValueError):
        return render(tree, comments)
    if ast.dump(original) == ast.dump(tree):
        return render(tree, comments)
    try:
        out = apply_edits(source, _Splicer(source, original, comments, donors).diff(original, tree, True))
        if _normal(parse_python(out)) == _normal(tree):
            return out
    except (_Whole, SyntaxError, ValueError, IndexError):
        pass  # (a donor that does not parse raises SyntaxError too: then nothing is spliced)
    return render(tree, comments)
