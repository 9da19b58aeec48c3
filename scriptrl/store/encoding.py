"""The store's one JSON encoding: every JSON column is written by ``dumps`` and so decodes the same way."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import time
from collections.abc import Mapping
from typing import Any


def to_plain(obj: Any) -> Any:
    """Turn results, numpy values and tuples into plain JSON values.

    Evaluation results carry numpy scalars and arrays from the environment, and a NaN mean
    (no episodes) must not become the non-standard ``NaN`` token that other JSON readers
    (a browser report, jq) reject, so non-finite floats become ``null``.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    # numpy scalars and arrays, recognized without importing numpy
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        return to_plain(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k.value if isinstance(k, enum.Enum) else k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted((to_plain(v) for v in obj), key=repr)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_plain({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} as JSON: {obj!r:.80}")


def dumps(obj: Any) -> str:
    """Compact, strict JSON: the store's one encoder, so every column decodes the same way."""
    return json.dumps(to_plain(obj), separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def _real(x: Any) -> float | None:
    """A float column value; SQLite would store NaN as NULL anyway, this makes it explicit."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _now() -> float:
    return time.time()
