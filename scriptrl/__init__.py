"""scriptrl: reinforcement learning where the policy is a readable Python program.

The package root stays import-light on purpose: the sandbox worker imports
``scriptrl.sandbox.worker`` inside a locked-down interpreter and must not pull in
gymnasium or the search just to start.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "EvalConfig": ("scriptrl.evaluate", "EvalConfig"),
    "SeedSplits": ("scriptrl.seeds", "SeedSplits"),
    "Program": ("scriptrl.program", "Program"),
    "resolve_env": ("scriptrl.envs", "resolve_env"),
    "train": ("scriptrl.search", "train"),
    "TrainResult": ("scriptrl.search", "TrainResult"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'scriptrl' has no attribute {name!r}")
