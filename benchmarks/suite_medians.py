"""Medians over search seeds for the suite: one search seed says little about a method whose
result varies from seed to seed, so the suite runs each learner with several seeds and reports
the median and the range, and the search's throughput against raw env steps/s."""

from __future__ import annotations

import statistics
import time
from typing import Any


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _span(values: list[float]) -> tuple[float, float] | None:
    return (min(values), max(values)) if values else None


def raw_steps_per_second(env_id: str, seconds: float = 2.0) -> float:
    """Single-process env steps/s with random actions and without gymnasium's env checker: the
    ceiling against which a search's own steps/s is a fraction."""
    import gymnasium

    from scriptrl.envs import resolve_env

    resolved = resolve_env(env_id)
    env = gymnasium.make(resolved.id, disable_env_checker=True, **dict(resolved.kwargs))
    env.reset(seed=0)
    env.action_space.seed(0)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            env.reset()
    env.close()
    return steps / (time.perf_counter() - started)


def median_rows(rows: list[dict[str, Any]], raw: dict[str, float]) -> list[dict[str, Any]]:
    """One row per (env, method): medians and ranges over the seeds that finished. A run that never
    reached the threshold counts as not reaching it, not as missing: the steps-to-threshold median
    is only given when at least half of the seeds reached it."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["env"], r["method"]), []).append(r)
    out = []
    for (env, method), rs in groups.items():
        hold = [r["holdout"] for r in rs if r["holdout"] is not None]
        audit = [r["audit"] for r in rs if r.get("audit") is not None]
        reached = sorted(r["steps_to_threshold"] for r in rs if r["steps_to_threshold"] is not None)
        reached_s = sorted(r["seconds_to_threshold"] for r in rs if r["seconds_to_threshold"] is not None)
        half = len(rs) / 2
        rates = [r["env_steps"] / r["seconds"] for r in rs if r["seconds"] > 0]
        out.append(
            {
                "env": env,
                "method": method,
                "kind": rs[0]["kind"],
                "seeds": sorted(r.get("seed", 0) for r in rs),
                "holdout": _median(hold),
                "holdout_range": _span(hold),
                "audit": _median(audit),
                "audit_range": _span(audit),
                "reached": len(reached),
                "runs": len(rs),
                "steps_to_threshold": _median(reached) if len(reached) >= half else None,
                "seconds_to_threshold": _median(reached_s) if len(reached_s) >= half else None,
                "env_steps": _median([float(r["env_steps"]) for r in rs]),
                "seconds": _median([r["seconds"] for r in rs]),
                "throughput": (_median(rates) / raw[env]) if rates and raw.get(env) else None,
            }
        )
    return out


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def _range(r: tuple[float, float] | None) -> str:
    return "" if r is None else f" [{r[0]:.2f}, {r[1]:.2f}]"


def medians_table(med: list[dict[str, Any]]) -> str:
    head = (
        "| env | method | seeds | holdout median [range] | audit median [range] | reached threshold | "
        "steps to threshold (median) | s to threshold | env steps (median) | s (median) | "
        "steps/s vs raw |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for m in med:
        lines.append(
            f"| {m['env']} | {m['method']} | {','.join(map(str, m['seeds']))} | "
            f"{_num(m['holdout'])}{_range(m['holdout_range'])} | "
            f"{_num(m['audit'])}{_range(m['audit_range'])} | "
            f"{m['reached']}/{m['runs']} | {_num(m['steps_to_threshold'], ',.0f')} | "
            f"{_num(m['seconds_to_threshold'], '.0f')} | {_num(m['env_steps'], ',.0f')} | "
            f"{_num(m['seconds'], '.0f')} | {_num(m['throughput'], '.2f')} |"
        )
    return "\n".join(lines)
