"""The size rule of the package: no module over 500 lines and no function over 80, unless the
piece says at its top why it must stay whole (a ``# one piece: ...`` comment, or a docstring whose
first line starts with ``One piece:``).

Big files and long functions grew by accident before (issue 11); this keeps them from growing back
unnoticed. The rule is checked on the source as text and AST, nothing is imported or run.
"""

from __future__ import annotations

import ast
import re
import textwrap

from checkout import ROOT

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
_REASON = re.compile(r"#\s*one piece:", re.IGNORECASE)


def _says_why(lines: list[str], first: int, last: int, docstring: str | None) -> bool:
    """A reason comment within ``lines[first:last]``, or a docstring that opens with one."""
    if docstring and docstring.strip().lower().startswith("one piece:"):
        return True
    return any(_REASON.search(line) for line in lines[first:last])


def oversized(source: str, name: str) -> list[str]:
    """Each module or function of ``source`` over its limit without a reason, as ``name:line what``."""
    tree = ast.parse(source)
    lines = source.splitlines()
    found = []
    if len(lines) > MAX_MODULE_LINES:
        head_end = tree.body[0].end_lineno if tree.body else 0
        if not _says_why(lines, 0, max(head_end or 0, 5), ast.get_docstring(tree)):
            found.append(f"{name}: {len(lines)} lines (limit {MAX_MODULE_LINES})")
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length <= MAX_FUNCTION_LINES:
            continue
        # The signature, the docstring and any comments before the first statement after it.
        body = node.body[1:] if ast.get_docstring(node) is not None and len(node.body) > 1 else node.body
        top_end = body[0].lineno - 1 if body else node.end_lineno or node.lineno
        if not _says_why(lines, node.lineno - 1, top_end, ast.get_docstring(node)):
            found.append(f"{name}:{node.lineno} {node.name}() is {length} lines (limit {MAX_FUNCTION_LINES})")
    return found


def test_no_module_or_function_of_the_package_is_over_its_limit():
    paths = sorted((ROOT / "scriptrl").rglob("*.py"))
    assert len(paths) > 100  # the package itself, not an empty folder
    found = []
    for path in paths:
        found += oversized(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not found, "split these, or say at their top why they must be one piece:\n" + "\n".join(found)


def _function(name: str, body_lines: int, top: str = "") -> str:
    body = "".join(f"    x{i} = {i}\n" for i in range(body_lines))
    return f"def {name}():\n{textwrap.indent(top, '    ')}{body}"


def test_the_rule_flags_a_long_function_and_a_long_module_unless_they_say_why():
    assert oversized(_function("short", MAX_FUNCTION_LINES - 1), "m.py") == []
    long = _function("long", MAX_FUNCTION_LINES)
    assert oversized(long, "m.py") == [f"m.py:1 long() is {MAX_FUNCTION_LINES + 1} lines (limit 80)"]
    commented = _function("kept", MAX_FUNCTION_LINES, "# one piece: a state machine read top to bottom\n")
    assert oversized(commented, "m.py") == []
    documented = _function("kept", MAX_FUNCTION_LINES, '"""One piece: the table is the spec."""\n')
    assert oversized(documented, "m.py") == []
    # A reason further down the body does not count: it must be at the top.
    late = _function("late", MAX_FUNCTION_LINES) + "    # one piece: too late\n"
    assert len(oversized(late, "m.py")) == 1

    module = "".join(f"x{i} = {i}\n" for i in range(MAX_MODULE_LINES + 1))
    assert oversized(module, "big.py") == [f"big.py: {MAX_MODULE_LINES + 1} lines (limit 500)"]
    assert oversized("# one piece: generated data\n" + module, "big.py") == []
