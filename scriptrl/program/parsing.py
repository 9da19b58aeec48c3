"""``ast.parse`` behind one lock per process.

CPython 3.11 keeps the AST constructor's recursion counter in state shared by all threads of an
interpreter (python/cpython#106905), so two threads parsing at once can fail with "SystemError:
AST constructor recursion depth mismatch". scriptrl parses in threads: the model lane's calls
validate replies while the search's thread writes children, and each evaluator process runs two
evaluations at once. Every parse in the package goes through here (except inside the sandbox, a
single-threaded process that imports as little as it can); parsing a policy takes well
under a millisecond, so the lock costs nothing measurable.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

_LOCK = threading.Lock()


def parse_python(source: str, filename: str = "<unknown>", mode: str = "exec") -> Any:
    """``ast.parse(source, filename, mode)``, one thread at a time."""
    with _LOCK:
        return ast.parse(source, filename=filename, mode=mode)
