"""Reading and editing policy programs through their syntax tree.

Two ways to edit, chosen to keep programs readable:

* *Span edits* rewrite a few characters of the original text (a number, a comparison
  operator, a name, an index) at positions the AST reports, so comments and layout
  survive. Constant perturbation, tuning, table edits and comparison flips use them.
* *Tree edits* change the structure (new conditions, removed branches, crossover) and
  re-render the whole module with ``render``, which tidies signs (``x - 0.5 * y``
  rather than ``x + -0.5 * y``), wraps long tables, and re-adds a comment to every line
  that reads an observation component (``pole_angle = obs[2]  # rad, typical ...``).

Numeric *sites* are the numbers a program contains, each with a role (see
``numeric_sites``); the tuner and the mutator agree on which ones are tunable.
"""

from __future__ import annotations

import ast
import builtins
import copy
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from scriptrl.program import check_source

_BUILTINS = frozenset(dir(builtins))
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div)


# --- numbers ---------------------------------------------------------------------------


def is_number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def is_signed_number(node: ast.AST) -> bool:
    """A number literal, or a negated one (``-0.5`` parses as USub applied to 0.5)."""
    return is_number(node) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and is_number(node.operand)
    )


def signed_value(node: ast.AST) -> int | float:
    if isinstance(node, ast.UnaryOp):
        return -node.operand.value  # type: ignore[attr-defined]
    return node.value  # type: ignore[attr-defined]


def round_sig(v: float, digits: int = 4) -> float:
    r = float(f"{v:.{digits}g}")
    return 0.0 if r == 0 else r


def fmt_number(v: float, is_int: bool, digits: int = 4) -> str:
    """Python text for a number: ints stay ints, floats keep ``digits`` significant digits."""
    if is_int:
        return str(int(round(v)))
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {v}")
    return repr(round_sig(v, digits))


def num_node(v: float, is_int: bool = False, digits: int = 4) -> ast.expr:
    """AST for a number; negatives become ``-(positive)`` so unparsing never needs parentheses."""
    value: int | float = int(round(v)) if is_int else round_sig(v, digits)
    if value < 0:
        return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=-value))
    return ast.Constant(value=value)


# --- parents, entry point, components -------------------------------------------------------


def parent_map(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    return parents


def entry_function(tree: ast.Module) -> tuple[ast.FunctionDef | None, str | None]:
    """The function that maps an observation to an action, and its observation parameter."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "policy":
            args = [*node.args.posonlyargs, *node.args.args]
            return node, (args[0].arg if args else None)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Policy":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "act":
                    args = [*item.args.posonlyargs, *item.args.args]
                    return item, (args[1].arg if len(args) > 1 else None)
    return None, None


def walk_function(fn: ast.AST) -> Iterable[ast.AST]:
    """Nodes of a function body, not descending into nested functions, lambdas or classes."""
    stack = list(reversed(getattr(fn, "body", [])))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _returned_names(tree: ast.AST) -> set[str]:
    return {n.value.id for n in ast.walk(tree) if isinstance(n, ast.Return) and isinstance(n.value, ast.Name)}


@dataclass
class Site:
    """One number literal in a program."""

    node: ast.expr  # the Constant, or the UnaryOp(USub, Constant) around it
    value: int | float  # with its sign
    is_int: bool
    role: str  # "tunable" | "action" | "table" | "fixed"
    parent: ast.AST | None

    @property
    def line(self) -> int:
        return getattr(self.node, "lineno", 0)


def _is_clip(node: ast.AST) -> bool:
    """``min(max(x, lo), hi)``, ``max(min(x, hi), lo)`` or ``np.clip(x, lo, hi)``."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    if isinstance(f, ast.Attribute) and f.attr == "clip" and len(node.args) == 3:
        return True
    if isinstance(f, ast.Name) and f.id in ("min", "max") and len(node.args) == 2:
        other = "max" if f.id == "min" else "min"
        return any(
            isinstance(a, ast.Call)
            and isinstance(a.func, ast.Name)
            and a.func.id == other
            and len(a.args) == 2
            for a in node.args
        )
    return False


def numeric_sites(tree: ast.AST, parents: dict[ast.AST, ast.AST] | None = None) -> list[Site]:
    """Every int/float literal (bools excluded) in AST order, with its role.

    Roles, which decide what tuning may touch:

    * ``fixed``: indices (anything inside ``x[...]``), ``range(...)`` arguments, clip bounds
      (``min(max(x, lo), hi)``, ``np.clip(x, lo, hi)``: they are the action bounds), numbers
      in f-strings, and ints that are not arithmetic operands or comparison operands
      (e.g. ``round(x, 2)``, an exponent, a divisor of ``//`` or ``%``, a repeat count
      as in ``[0.0] * 4``).
    * ``action``: an int that is returned (``return 1``, ``return 1 if s > 0 else 0``)
      or assigned to a name the program returns (``action = 2 ... return action``).
    * ``table``: an int element of a list/tuple literal made only of ints (lookup tables).
    * ``tunable``: every other float, and ints that are operands of + - * / or of a comparison.
    """
    parents = parents if parents is not None else parent_map(tree)
    returned = _returned_names(tree)
    weights = _weight_lists(tree, parents)
    out: list[Site] = []

    def classify(node: ast.expr, fixed: bool) -> Site:
        parent = parents.get(node)
        value = signed_value(node)
        is_int = type(value) is int
        if fixed:
            return Site(node, value, is_int, "fixed", parent)
        if not is_int:
            return Site(node, value, False, "tunable", parent)
        if _in_action_position(node, parents, returned):
            return Site(node, value, True, "action", parent)
        if isinstance(parent, ast.List | ast.Tuple) and all(
            is_signed_number(e) and type(signed_value(e)) is int for e in parent.elts
        ):
            if id(parent) in weights:  # ``weights = [1, 1, 1, 1]`` then ``np.dot(weights, obs)``
                return Site(node, value, False, "tunable", parent)
            return Site(node, value, True, "table", parent)
        if isinstance(parent, ast.Compare):
            return Site(node, value, True, "tunable", parent)
        if isinstance(parent, ast.BinOp):
            other = parent.right if parent.left is node else parent.left
            if isinstance(parent.op, _ARITH):
                repeat = (
                    isinstance(parent.op, ast.Mult)
                    and isinstance(other, ast.List | ast.Tuple | ast.ListComp | ast.JoinedStr)
                    or (isinstance(other, ast.Constant) and isinstance(other.value, str))
                )
                return Site(node, value, True, "fixed" if repeat else "tunable", parent)
            if isinstance(parent.op, ast.Pow | ast.FloorDiv | ast.Mod) and parent.left is node:
                return Site(node, value, True, "tunable", parent)
        return Site(node, value, True, "fixed", parent)

    def visit(node: ast.AST, fixed: bool) -> None:
        if isinstance(node, ast.JoinedStr):
            return
        if is_signed_number(node):
            out.append(classify(node, fixed))  # type: ignore[arg-type]
            return
        if isinstance(node, ast.Subscript):
            visit(node.value, fixed)
            visit(node.slice, True)
            return
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            for child in ast.iter_child_nodes(node):
                visit(child, True)
            return
        if _is_clip(node):
            call: ast.Call = node  # type: ignore[assignment]
            visit(call.func, fixed)
            for arg in call.args:
                if is_signed_number(arg):
                    visit(arg, True)
                elif _is_clip_inner(arg, call):
                    inner: ast.Call = arg  # type: ignore[assignment]
                    for a in inner.args:
                        visit(a, True if is_signed_number(a) else fixed)
                else:
                    visit(arg, fixed)
            for kw in call.keywords:
                visit(kw, fixed)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, fixed)

    visit(tree, False)
    return out


def _weight_lists(tree: ast.AST, parents: dict[ast.AST, ast.AST]) -> set[int]:
    """Ids of int-only list/tuple literals that are weights, not lookup tables: bound to a
    name that is only ever combined arithmetically (``np.dot(w, obs)``, ``zip(w, obs)``,
    ``w[i] * obs[i]``), never indexed to pick a value out (``TABLE[state]``). A model that
    writes ``[1, 1, 1, 1]`` for weights means numbers to tune, not actions."""
    bound: dict[str, ast.AST] = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.List | ast.Tuple) and len(node.value.elts) > 1
                and all(is_signed_number(e) and type(signed_value(e)) is int for e in node.value.elts)):  # fmt: skip
            name = node.targets[0].id
            bound[name] = None if name in bound else node.value  # bound twice: leave it alone
    out: set[int] = set()
    for name, literal in bound.items():
        uses = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]
        if literal is None or not uses:
            continue
        weighted = True
        for use in uses:
            p = parents.get(use)
            if isinstance(p, ast.Subscript) and p.value is use:
                q = parents.get(p)
                weighted = isinstance(q, ast.BinOp) and isinstance(q.op, _ARITH)
            elif isinstance(p, ast.Return) or (isinstance(p, ast.Assign) and p.value is use):
                weighted = False
            if not weighted:
                break
        if weighted:
            out.add(id(literal))
    return out


def _is_clip_inner(arg: ast.AST, outer: ast.Call) -> bool:
    if not (
        isinstance(outer.func, ast.Name) and isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name)
    ):
        return False
    return {outer.func.id, arg.func.id} == {"min", "max"} and len(arg.args) == 2


def _in_action_position(node: ast.AST, parents: dict, returned: set[str]) -> bool:
    cur, p = node, parents.get(node)
    while isinstance(p, ast.IfExp) and cur is not p.test:
        cur, p = p, parents.get(p)
    if isinstance(p, ast.Return) and p.value is cur:
        return True
    if isinstance(p, ast.Assign) and p.value is cur and len(p.targets) == 1:
        t = p.targets[0]
        return isinstance(t, ast.Name) and t.id in returned
    return False


# --- program analysis -------------------------------------------------------------------


@dataclass
class Analysis:
    """A parsed program with what the generators need to know about it."""

    source: str
    tree: ast.Module
    parents: dict[ast.AST, ast.AST]
    entry: ast.FunctionDef | None
    obs: str | None  # name of the observation parameter
    comp_vars: dict[str, int]  # variable -> component position (in the layout's component list)
    comp_reads: set[ast.AST]  # obs[k] nodes that define a component variable
    sites: list[Site]

    @classmethod
    def of(
        cls, source: str, discrete_obs: bool = False, index_to_pos: dict[int, int] | None = None
    ) -> Analysis:
        tree = ast.parse(source)
        parents = parent_map(tree)
        entry, obs = entry_function(tree)
        comp_vars: dict[str, int] = {}
        comp_reads: set[ast.AST] = set()
        index_to_pos = index_to_pos or {}
        if entry is not None and obs:
            for node in walk_function(entry):
                if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                    continue
                target, value = node.targets[0], node.value
                if isinstance(target, ast.Name):
                    k = _obs_index(value, obs)
                    if k is not None and k in index_to_pos:
                        comp_vars.setdefault(target.id, index_to_pos[k])
                        comp_reads.add(value)
                    elif discrete_obs and isinstance(value, ast.Name) and value.id == obs:
                        comp_vars.setdefault(target.id, 0)
                        comp_reads.add(value)
                elif isinstance(target, ast.Tuple) and isinstance(value, ast.Name) and value.id == obs:
                    for k, elt in enumerate(target.elts):
                        if isinstance(elt, ast.Name) and k in index_to_pos:
                            comp_vars.setdefault(elt.id, index_to_pos[k])
        return cls(source, tree, parents, entry, obs, comp_vars, comp_reads, numeric_sites(tree, parents))

    def comp_of(self, node: ast.AST, discrete_obs: bool = False, index_to_pos: dict[int, int] | None = None):
        """Component position read by ``node`` (a component variable or ``obs[k]``), else None."""
        if isinstance(node, ast.Name):
            if node.id in self.comp_vars:
                return self.comp_vars[node.id]
            if discrete_obs and node.id == self.obs:
                return 0
            return None
        k = _obs_index(node, self.obs)
        if k is not None and index_to_pos is not None:
            return index_to_pos.get(k)
        return None

    def returns(self) -> list[ast.Return]:
        if self.entry is None:
            return []
        return [n for n in walk_function(self.entry) if isinstance(n, ast.Return) and n.value is not None]


def _obs_index(node: ast.AST, obs: str | None) -> int | None:
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == obs
        and isinstance(node.slice, ast.Constant)
        and type(node.slice.value) is int
    ):
        return node.slice.value
    return None


# --- span edits ---------------------------------------------------------------------------


class SourceText:
    """Maps AST (line, UTF-8 byte column) positions to string offsets."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = re.findall(r"[^\n]*\n|[^\n]+$", source)
        self.starts = []
        pos = 0
        for line in self.lines:
            self.starts.append(pos)
            pos += len(line)

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (
            self.offset(node.lineno, node.col_offset),  # type: ignore[attr-defined]
            self.offset(node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
        )

    def text(self, node: ast.AST) -> str:
        a, b = self.span(node)
        return self.source[a:b]


Edit = tuple[int, int, str]


def apply_edits(source: str, edits: list[Edit]) -> str:
    """Apply non-overlapping replacements (start, end, text); overlapping ones raise ValueError."""
    out = source
    last_start = len(source) + 1
    for start, end, text in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        if end > last_start:
            raise ValueError("overlapping edits")
        out = out[:start] + text + out[end:]
        last_start = start
    return out


def _needs_parens(node: ast.AST, parent: ast.AST | None) -> bool:
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Pow) and parent.left is node:
        return True
    if isinstance(parent, ast.Attribute | ast.Subscript) and parent.value is node:
        return True
    return isinstance(parent, ast.Call) and parent.func is node


def number_edits(st: SourceText, site: Site, value: float, parents: dict[ast.AST, ast.AST]) -> list[Edit]:
    """Edits that write ``value`` at ``site``, flipping a neighbouring + / - instead of writing ``- -x``."""
    rounded = float(fmt_number(value, site.is_int))
    node = site.node
    chain: ast.AST = node
    p = parents.get(node)
    if isinstance(p, ast.BinOp) and isinstance(p.op, ast.Mult) and p.left is node:
        chain = p
    gp = parents.get(chain)
    if isinstance(gp, ast.BinOp) and isinstance(gp.op, ast.Add | ast.Sub) and gp.right is chain:
        a = st.offset(gp.left.end_lineno, gp.left.end_col_offset)  # type: ignore[arg-type]
        b = st.span(chain)[0]
        gap = st.source[a:b]
        sym = "+" if isinstance(gp.op, ast.Add) else "-"
        if gap.count(sym) == 1 and "#" not in gap and not gap.replace(sym, "").strip():
            edits = [(*st.span(node), fmt_number(abs(rounded), site.is_int))]
            if rounded < 0:
                edits.append((a, b, gap.replace(sym, "-" if sym == "+" else "+")))
            return edits
    text = fmt_number(rounded, site.is_int)
    if text.startswith("-") and _needs_parens(node, p):
        text = f"({text})"
    return [(*st.span(node), text)]


def write_numbers(source: str, an: Analysis, changes: dict[int, float]) -> str:
    """Rewrite the sites ``an.sites[i]`` for i in ``changes`` with new values, keeping all other text."""
    st = SourceText(source)
    edits: list[Edit] = []
    for i, v in changes.items():
        edits.extend(number_edits(st, an.sites[i], v, an.parents))
    return apply_edits(source, edits)


# --- rendering ---------------------------------------------------------------------------


class _TidySigns(ast.NodeTransformer):
    """``x + -0.5 * y`` -> ``x - 0.5 * y``; negative Constants -> unary minus."""

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if type(node.value) in (int, float) and node.value < 0:
            return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=-node.value))
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        o = node.operand
        if (
            isinstance(node.op, ast.USub)
            and isinstance(o, ast.BinOp)
            and isinstance(o.op, ast.Mult | ast.Div)
        ):
            if is_number(o.left):  # -(0.5 * x) -> -0.5 * x
                return ast.BinOp(left=ast.UnaryOp(op=ast.USub(), operand=o.left), op=o.op, right=o.right)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Add | ast.Sub):
            return node
        r = node.right
        neg = _negated(r)
        if neg is not None:
            node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            node.right = neg
        return node


def _negated(r: ast.AST) -> ast.AST | None:
    if isinstance(r, ast.UnaryOp) and isinstance(r.op, ast.USub) and is_number(r.operand):
        return r.operand
    if isinstance(r, ast.BinOp) and isinstance(r.op, ast.Mult | ast.Div):
        inner = _negated(r.left)
        if inner is not None and not isinstance(r.left, ast.BinOp):
            return ast.BinOp(left=inner, op=r.op, right=r.right)
    return None


def _wrapped_list(name: str, elts: list[ast.expr]) -> str | None:
    """A long list of numbers as several lines (rows of a square grid when it is one)."""
    if len(elts) < 17 or not all(is_signed_number(e) for e in elts):
        return None
    texts = [ast.unparse(e) for e in elts]
    ints = all(type(signed_value(e)) is int for e in elts)
    root = math.isqrt(len(elts))
    if root * root == len(elts) and root <= 32:
        per = root
    else:
        per = 16 if ints else 6
    rows = []
    for i in range(0, len(texts), per):
        row = ", ".join(texts[i : i + per]) + ","
        last = min(i + per, len(texts)) - 1
        rows.append(f"    {row}  # {i}-{last}" if ints else f"    {row}")
    return f"{name} = [\n" + "\n".join(rows) + "\n]"


_ASSIGN_LINE = re.compile(r"^(\s*)([A-Za-z_]\w*) = (.+)$")


def render(tree: ast.Module, comments: dict[str, tuple[str, str]] | None = None) -> str:
    """Readable source for a tree: tidy signs, wrapped tables, comments on component reads.

    ``comments`` maps a read expression as unparsed (``obs[2]``) to (component name,
    comment text); a line ``name = obs[2]`` gets ``  # comment`` appended.
    """
    tree = _TidySigns().visit(copy.deepcopy(tree))
    ast.fix_missing_locations(tree)
    chunks: list[tuple[ast.stmt, str]] = []
    for stmt in tree.body:
        text = None
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and isinstance(stmt.value, ast.List)
        ):
            text = _wrapped_list(stmt.targets[0].id, stmt.value.elts)
        chunks.append((stmt, text if text is not None else ast.unparse(stmt)))
    out: list[str] = []
    prev: ast.stmt | None = None
    for stmt, text in chunks:
        if prev is not None:
            big = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            if isinstance(stmt, big) or isinstance(prev, big):
                out.append("\n\n")
            elif _is_docstring(prev) or isinstance(prev, ast.Import | ast.ImportFrom) != isinstance(
                stmt, ast.Import | ast.ImportFrom
            ):
                out.append("\n")
        out.append(text + "\n")
        prev = stmt
    source = "\n".join(_wrap_long(line) for line in "".join(out).split("\n"))
    if comments:
        lines = []
        for line in source.split("\n"):
            m = _ASSIGN_LINE.match(line)
            if m and m.group(3) in comments:
                name, comment = comments[m.group(3)]
                if name != m.group(2):
                    comment = f"{name}: {comment}"
                line = f"{line}  # {comment}"
            lines.append(line)
        source = "\n".join(lines)
    return source


_WRAP_AT = 100


def _wrap_long(line: str, width: int = 88) -> str:
    """Break ``name = a + b - c ...`` longer than _WRAP_AT at top-level + and - into a parenthesised block."""
    m = _ASSIGN_LINE.match(line)
    if len(line) <= _WRAP_AT or not m or "'" in line or '"' in line or "#" in line:
        return line
    indent, name, expr = m.groups()
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in "+-" and expr[i - 1 : i] == " " and expr[i + 1 : i + 2] == " ":
            pieces.append(expr[start:i].strip())
            start = i
    pieces.append(expr[start:].strip())
    if len(pieces) < 2:
        return line
    inner = indent + "    "
    rows, cur = [], ""
    for p in pieces:
        if cur and len(inner) + len(cur) + 1 + len(p) > width:
            rows.append(cur)
            cur = p
        else:
            cur = f"{cur} {p}" if cur else p
    rows.append(cur)
    return f"{indent}{name} = (\n" + "\n".join(inner + r for r in rows) + f"\n{indent})"


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


# --- validation --------------------------------------------------------------------------


def undefined_names(tree: ast.AST) -> set[str]:
    """Names read but never bound anywhere in the module (a cheap guard against NameError)."""
    stored: set[str] = set()
    loaded: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            (loaded if isinstance(n.ctx, ast.Load) else stored).add(n.id)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            stored.add(n.name)
        elif isinstance(n, ast.arg):
            stored.add(n.arg)
        elif isinstance(n, ast.alias):
            stored.add((n.asname or n.name).split(".")[0])
        elif isinstance(n, ast.ExceptHandler) and n.name:
            stored.add(n.name)
        elif isinstance(n, ast.Global | ast.Nonlocal):
            stored.update(n.names)
        elif isinstance(n, ast.MatchAs | ast.MatchStar) and n.name:
            stored.add(n.name)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            stored.add(n.rest)
    return {n for n in loaded if n not in stored and n not in _BUILTINS}


def problem(source: str, allowed_undefined: set[str] | frozenset[str] = frozenset()) -> str | None:
    """Why ``source`` is not an acceptable child program, or None when it is."""
    problems = check_source(source)
    if problems:
        return problems[0]
    try:
        compile(source, "policy.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        return f"does not compile: {e}"
    tree = ast.parse(source)
    missing = undefined_names(tree) - set(allowed_undefined)
    if missing:
        return f"undefined names: {', '.join(sorted(missing))}"
    entry, _ = entry_function(tree)
    if entry is not None and not any(
        isinstance(n, ast.Return) and n.value is not None for n in walk_function(entry)
    ):
        return "the policy never returns an action"
    return None


def names_bound(tree: ast.AST) -> set[str]:
    """Every name the module binds anywhere, plus builtins."""
    return (_all_names(tree) - undefined_names(tree)) | _BUILTINS


def _all_names(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(n.name)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, ast.alias):
            out.add((n.asname or n.name).split(".")[0])
    return out


def skeleton(tree: ast.AST) -> str:
    """The tree's shape with every number replaced by 0 and docstrings removed."""
    t = copy.deepcopy(tree)

    class Zero(ast.NodeTransformer):
        def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
            if is_signed_number(node):
                return ast.Constant(value=0)
            return self.generic_visit(node)

        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            return ast.Constant(value=0) if is_number(node) else node

    t = Zero().visit(t)
    for node in ast.walk(t):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(t, annotate_fields=False)


def map_sites(sites: list[Site], pred: Callable[[Site], bool]) -> list[int]:
    return [i for i, s in enumerate(sites) if pred(s)]
