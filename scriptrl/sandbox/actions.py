"""Validating what a worker claims is an action, against the environment's action space.

The worker is untrusted, so an action arrives as plain JSON data (see
``scriptrl.sandbox.worker.Runner.encode``) and is checked here for exact type and
shape, finiteness and range before it ever reaches ``env.step``. A bool is not an int.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

#: A checker returns (action for env.step, None) or (None, reason).
Checker = Callable[[Any], tuple[Any, str | None]]


def _describe(a: Any) -> str:
    if isinstance(a, dict):
        t = a.get("t")
        if t == "bool":
            return "a bool"
        if t == "arr":
            shape = a.get("s")
            return f"an array of shape {tuple(shape)}" if isinstance(shape, list) else "a malformed array"
        if t == "other":
            return f"a {str(a.get('type', 'value'))[:60]}"
        return "an unknown value"
    if isinstance(a, float):
        return f"a float ({a!r})"
    if isinstance(a, int):
        return f"the int {a}"
    return f"a {type(a).__name__}"


def make_checker(space: spaces.Space) -> Checker:
    """Build the per-step check once per evaluation so the hot loop does no dispatch."""
    if isinstance(space, spaces.Discrete):
        lo, n = int(space.start), int(space.n)
        hi = lo + n - 1
        expect = f"an int in {lo}..{hi}"

        def discrete(a: Any) -> tuple[Any, str | None]:
            if type(a) is int and lo <= a <= hi:
                return a, None
            if type(a) is int:
                return None, f"invalid action: the int {a} is out of range (expected {expect})"
            return None, f"invalid action: got {_describe(a)}, expected {expect}"

        return discrete
    if isinstance(space, spaces.Box):
        shape = list(space.shape)
        low = space.low.astype(np.float64).ravel().tolist()
        high = space.high.astype(np.float64).ravel().tolist()
        dtype = space.dtype
        bounds = list(zip(low, high, strict=True))
        expect = f"a list or array of shape {tuple(shape)} within [{min(low):g}, {max(high):g}]"

        def box(a: Any) -> tuple[Any, str | None]:
            if not isinstance(a, dict) or a.get("t") != "arr":
                return None, f"invalid action: got {_describe(a)}, expected {expect}"
            if a.get("s") != shape or a.get("k") == "b":
                return None, f"invalid action: got {_describe(a)}, expected {expect}"
            v = a.get("v")
            if not isinstance(v, list) or len(v) != len(bounds):
                return None, "invalid action: malformed array data"
            for i, (x, (lo_i, hi_i)) in enumerate(zip(v, bounds, strict=True)):
                if type(x) is not float and not (type(x) is int and abs(x) < 2**63):
                    return None, f"invalid action: component {i} is not a finite number"
                if not math.isfinite(x):
                    return None, f"invalid action: component {i} is {x!r}, not a finite number"
                if x < lo_i or x > hi_i:
                    return (
                        None,
                        f"invalid action: component {i} = {x:g} is outside [{lo_i:g}, {hi_i:g}] (clip it)",
                    )
            return np.asarray(v, dtype=dtype).reshape(shape), None

        return box
    if isinstance(space, spaces.MultiDiscrete | spaces.MultiBinary):

        def multi(a: Any) -> tuple[Any, str | None]:
            if not isinstance(a, dict) or a.get("t") != "arr" or a.get("k") not in ("i", "u", "b"):
                return (
                    None,
                    f"invalid action: got {_describe(a)}, expected an integer array of shape {space.shape}",
                )
            try:
                arr = np.asarray(a["v"], dtype=space.dtype).reshape(a["s"])
            except (ValueError, TypeError, KeyError):
                return None, "invalid action: malformed array data"
            if tuple(arr.shape) != tuple(space.shape) or not space.contains(arr):
                return None, f"invalid action: {arr.tolist()} is not in {space}"
            return arr, None

        return multi

    def generic(a: Any) -> tuple[Any, str | None]:  # pragma: no cover - exotic spaces
        return None, f"invalid action: scriptrl cannot validate actions for {type(space).__name__} spaces yet"

    return generic


def observation_codec(space: spaces.Space) -> dict:
    """How observations travel to the worker: raw bytes for boxes, JSON otherwise."""
    if isinstance(space, spaces.Box):
        return {"kind": "box", "dtype": str(space.dtype), "shape": list(space.shape)}
    if isinstance(space, spaces.Discrete):
        return {"kind": "int"}
    if isinstance(space, spaces.Tuple):
        return {"kind": "tuple"}
    return {"kind": "json"}


def encode_observations(codec: dict, observations: list) -> tuple[Any, bytes]:
    """Return (header value or None, payload bytes) for a batch of observations."""
    kind = codec["kind"]
    if kind == "box":
        return None, np.asarray(observations, dtype=codec["dtype"]).tobytes()
    if kind == "int":
        return [int(o) for o in observations], b""
    return [plain_data(o) for o in observations], b""


def plain_data(o: Any) -> Any:
    """Numpy arrays and scalars as JSON-ready lists and numbers, exactly (no rounding)."""
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, tuple | list):
        return [plain_data(x) for x in o]
    if isinstance(o, dict):
        return {str(k): plain_data(v) for k, v in o.items()}
    return o
