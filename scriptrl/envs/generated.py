"""Descriptions for environments nobody has written a curated file for.

Any registered or custom environment should still be usable, so when no curated file
exists we say what the spaces say -- shapes, bounds, action counts -- and are honest
that the meaning of each number is unknown. Infinite bounds become ``None`` so a
prompt never claims a range of +-inf.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces

from scriptrl.envs.description import ActionInfo, EnvDescription, ObsComponent

_SEE_DOCS = "see the environment's documentation"
# A flat Box beyond this many entries (images, big state vectors) is described as one
# array component: hundreds of "obs[i]: unknown" lines would only bloat a prompt.
_MAX_LISTED = 64


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _uniform(values: np.ndarray) -> float | None:
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size and np.all(flat == flat[0]):
        return _finite(flat[0])
    return None


def _box_components(prefix: str, space: spaces.Box) -> tuple[str, list[ObsComponent]]:
    if len(space.shape) <= 1 and space.shape and space.shape[0] <= _MAX_LISTED:
        return "vector", [
            ObsComponent(f"{prefix}[{i}]", "meaning not documented here", "", _finite(lo), _finite(hi))
            for i, (lo, hi) in enumerate(zip(space.low, space.high, strict=True))
        ]
    is_image = len(space.shape) == 3 and space.dtype == np.uint8
    meaning = f"array of shape {tuple(int(d) for d in space.shape)}, dtype {space.dtype}"
    unit = "pixel value" if is_image else ""
    return ("image" if is_image else "array"), [
        ObsComponent(prefix, meaning, unit, _uniform(space.low), _uniform(space.high))
    ]


def _components(prefix: str, space: spaces.Space) -> tuple[str, list[ObsComponent]]:
    """Flatten a space into named components; the kind word tells a policy how to index ``obs``."""
    if isinstance(space, spaces.Box):
        return _box_components(prefix, space)
    if isinstance(space, spaces.Discrete):
        n, start = int(space.n), int(space.start)
        meaning = f"integer state index, one of {n} values ({start} .. {start + n - 1})"
        return "discrete", [ObsComponent(prefix, meaning, "index", float(start), float(start + n - 1))]
    if isinstance(space, spaces.MultiBinary):
        count = int(np.prod(space.shape))
        return "multi_binary", [
            ObsComponent(f"{prefix}[{i}]", "binary flag", "flag", 0.0, 1.0) for i in range(count)
        ]
    if isinstance(space, spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec).ravel()
        starts = np.asarray(space.start).ravel()
        return "multi_discrete", [
            ObsComponent(
                f"{prefix}[{i}]", f"integer, one of {int(n)} values", "index", float(s), float(s + n - 1)
            )
            for i, (n, s) in enumerate(zip(nvec, starts, strict=True))
        ]
    if isinstance(space, spaces.Tuple):
        out: list[ObsComponent] = []
        for i, sub in enumerate(space.spaces):
            _, comps = _components(f"{prefix}[{i}]", sub)
            out.extend(comps)
        return "tuple", out
    if isinstance(space, spaces.Dict):
        out = []
        for key, sub in space.spaces.items():
            _, comps = _components(f"{prefix}[{key!r}]", sub)
            out.extend(comps)
        return "dict", out
    return type(space).__name__.lower(), [ObsComponent(prefix, repr(space), "", None, None)]


def _actions(space: spaces.Space) -> tuple[str, list[ActionInfo]]:
    if isinstance(space, spaces.Discrete):
        n, start = int(space.n), int(space.start)
        return "discrete", [
            ActionInfo(f"action_{i}", f"action {i}; its effect is not documented here ({_SEE_DOCS})")
            for i in range(start, start + n)
        ]
    if isinstance(space, spaces.Box):
        lows, highs = space.low.ravel(), space.high.ravel()
        return "continuous", [
            ActionInfo(
                f"action_{i}", f"continuous value in [{_finite(lo)}, {_finite(hi)}]; effect: {_SEE_DOCS}"
            )
            for i, (lo, hi) in enumerate(zip(lows, highs, strict=True))
        ]
    if isinstance(space, spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec).ravel()
        return "multi_discrete", [
            ActionInfo(f"action_{i}", f"integer choice among {int(n)} values; effect: {_SEE_DOCS}")
            for i, n in enumerate(nvec)
        ]
    if isinstance(space, spaces.MultiBinary):
        count = int(np.prod(space.shape))
        return "multi_binary", [
            ActionInfo(f"action_{i}", f"0 or 1; effect: {_SEE_DOCS}") for i in range(count)
        ]
    return type(space).__name__.lower(), [ActionInfo("action", repr(space))]


def _brief(space: spaces.Space) -> str:
    # numpy's repr of per-element Box bounds is long and ragged; the components list them anyway.
    if isinstance(space, spaces.Box):
        return f"Box(shape={tuple(int(d) for d in space.shape)}, dtype={space.dtype})"
    return str(space)


def describe_spaces(
    env_id: str,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    time_limit: int | None,
    threshold: float | None,
) -> EnvDescription:
    """Build an honest, minimal description when no curated file exists for ``env_id``."""
    obs_kind, observation = _components("obs", observation_space)
    act_kind, actions = _actions(action_space)
    return EnvDescription(
        id=env_id,
        title="no curated description; described from its spaces only",
        summary=(
            f"No curated description exists for {env_id}. Observation space: {_brief(observation_space)}. "
            f"Action space: {_brief(action_space)}. The meaning of individual components is unknown "
            f"here; {_SEE_DOCS}."
        ),
        observation_kind=obs_kind,
        observation=tuple(observation),
        action_kind=act_kind,
        actions=tuple(actions),
        reward=_SEE_DOCS,
        termination=_SEE_DOCS,
        time_limit=int(time_limit) if time_limit else None,
        solved_threshold=float(threshold) if threshold is not None else None,
        generated=True,
    )
