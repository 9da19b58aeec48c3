"""Reading a stored run config whose layout belongs to the learning loop, not to the store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def config_value(config: Mapping[str, Any], *names: str) -> Any:
    """The config layout belongs to the learning loop; accept the spellings it may use."""
    for name in names:
        value = config.get(name)
        if isinstance(value, Mapping):
            value = value.get("id") or value.get("name")
        if value not in (None, ""):
            return value
    return None
