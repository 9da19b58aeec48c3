"""Fixtures several test packages use: the command line run as a person runs it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

#: Runs ``python -m scriptrl ARGS...`` in a fresh process: output captured as text, bounded in time.
RunCli = Callable[..., subprocess.CompletedProcess]


def _run_cli(*args: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scriptrl", *args], capture_output=True, text=True, timeout=timeout, **kw
    )


@pytest.fixture(scope="session")
def cli() -> RunCli:
    """The real console entry point in its own process (so a crash, exit code or stray output is
    the user's), never the in-process ``main``; keyword arguments go to ``subprocess.run``."""
    return _run_cli
