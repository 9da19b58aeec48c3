"""How observations and actions read in a prompt: short numbers, a named discrete action, and a
length cap, so one long observation cannot crowd out the rest of the feedback."""

from __future__ import annotations

from typing import Any


def num_text(x: object) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)  # a state index stays whole


def obs_text(obs: object, limit: int = 160) -> str:
    if isinstance(obs, list) and obs and all(isinstance(v, int | float) for v in obs):
        text = "[" + ", ".join(num_text(v) for v in obs) + "]"
    else:
        text = str(obs)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def action_text(action: object, desc: Any) -> str:
    """A discrete action with its name from the description; a vector with short numbers."""
    if desc.action_kind == "discrete" and isinstance(action, int) and 0 <= action < len(desc.actions):
        return f"{action} ({desc.actions[action].name})"
    if isinstance(action, list):
        return "[" + ", ".join(num_text(v) for v in action) + "]"
    return str(action)
