"""Typed records the store writes: generator calls, and an evaluation read into its columns."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from scriptrl.store.encoding import _real


@dataclasses.dataclass(frozen=True)
class CallRecord:
    """One generator call as the calls table keeps it (offline calls have no tokens, cost or model)."""

    generator: str
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    model: str | None = None
    program_id: int | None = None
    ok: bool = True
    error: str | None = None
    temperature: float | None = None


# --------------------------------------------------------------------------- the store


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _result_fields(result: Any) -> dict[str, Any]:
    """Read an EvalResult, or a dict with its keys (``EvalResult.to_dict()`` or hand-made), into columns."""
    returns = list(_get(result, "returns", None) or [])
    episodes = list(_get(result, "episodes", None) or [])
    if isinstance(_get(result, "episodes", None), int):  # to_dict(with_episodes=False) + a count
        episodes = []
    seeds = list(_get(result, "seeds", None) or [_get(ep, "seed") for ep in episodes])
    n = len(returns) or len(episodes) or len(seeds)
    ci = _get(result, "ci95", None)
    ci_lo, ci_hi = (ci[0], ci[1]) if ci is not None else (_get(result, "ci_lo"), _get(result, "ci_hi"))
    digest = []
    for ep in episodes:
        ret = _get(ep, "ret", None)
        entry = {
            "seed": _get(ep, "seed"),
            "return": _get(ep, "return", None) if ret is None else ret,
            "length": _get(ep, "length"),
            "end": _get(ep, "end"),
            "reason": _get(ep, "reason"),
            "tail": _get(ep, "tail", []),
            "action_summary": _get(ep, "action_summary", {}),
        }
        # kept only where the environment defines success (absent in runs stored before it existed)
        if _get(ep, "success") is not None:
            entry["success"] = bool(_get(ep, "success"))
        digest.append(entry)
    if not digest and _get(result, "digest", None):
        digest = list(_get(result, "digest"))
    return {
        "episodes": int(n),
        "mean": _real(_get(result, "mean")),
        "std": _real(_get(result, "std")),
        "ci_lo": _real(ci_lo),
        "ci_hi": _real(ci_hi),
        "median": _real(_get(result, "median")),
        "min": _real(_get(result, "min")),
        "max": _real(_get(result, "max")),
        "env_steps": int(_get(result, "env_steps", 0) or 0),
        "seconds": _real(_get(result, "seconds", 0.0)) or 0.0,
        "seeds": seeds,
        "failures": list(_get(result, "failures", None) or []),
        "digest": digest,
        "env_id": _get(result, "env_id"),
        "gymnasium_version": _get(result, "gymnasium_version"),
        "isolation": dict(_get(result, "isolation", None) or {}),
        "program_sha256": _get(result, "program_sha256"),
        "notice": _get(result, "notice"),
    }


# --------------------------------------------------------------------------- listing
