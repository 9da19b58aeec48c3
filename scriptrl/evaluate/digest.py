"""What an episode digest keeps of observations and actions: plain JSON values and discrete-state visits."""

from __future__ import annotations

from typing import Any

import numpy as np

from scriptrl.evaluate.results import Episode

#: Distinct discrete states an episode digest counts visits of (the rest are left out).
_MAX_VISITED = 512


def _note_visit(ep: Episode, obs: Any) -> None:
    """Count each discrete state the episode acts in (keys in first-visit order), so a generator can
    tell the states on the way to a success from those before a failure or in a loop."""
    if isinstance(obs, int | np.integer) and not isinstance(obs, bool):
        visits = ep.action_summary.setdefault("visits", {})
        key = str(int(obs))  # JSON object keys are strings, before and after the run store
        if key in visits or len(visits) < _MAX_VISITED:
            visits[key] = visits.get(key, 0) + 1


def _plain(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return [round(float(v), 5) for v in x.ravel()] if x.dtype.kind == "f" else x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict) and x.get("t") == "arr":
        return x.get("v")
    if isinstance(x, tuple | list):
        return [_plain(v) for v in x]
    return x
