"""What an evaluation returns: episodes, their statistics, and the union of several results.

Statistics are always recomputed from the episodes, so a merged result stays consistent.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from scriptrl.success_rate import SuccessRate


@dataclass
class Episode:
    seed: int
    ret: float = 0.0
    length: int = 0
    end: str = "running"  # terminated | truncated | failure
    reason: str | None = None
    tail: list = field(default_factory=list)
    action_summary: dict = field(default_factory=dict)
    null_return: float | None = None  # after a failure: what doing nothing scores on this seed
    success: bool | None = None  # by the environment's success rule; None when it defines none


@dataclass
class EvalResult:
    env_id: str
    env_label: str
    gymnasium_version: str
    split: str
    seeds: list[int]
    returns: list[float]
    lengths: list[int]
    mean: float
    std: float
    ci95: tuple[float, float]
    median: float
    min: float
    max: float
    env_steps: int
    seconds: float
    failures: list[dict]
    episodes: list[Episode]
    isolation: dict[str, str]
    program_sha256: str
    notice: str | None = None
    # the share of episodes that succeeded and its Wilson 95 % interval (None: no success defined)
    success_rate: float | None = None
    success_ci95: tuple[float, float] | None = None
    success_note: str | None = None  # info keys the rule names that episodes did not report

    @property
    def success(self) -> SuccessRate | None:
        return SuccessRate.of(ep.success for ep in self.episodes)

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.seconds if self.seconds > 0 else 0.0

    @property
    def termination_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ep in self.episodes:
            counts[ep.end] = counts.get(ep.end, 0) + 1
        return counts

    def to_dict(self, with_episodes: bool = True) -> dict[str, Any]:
        d = asdict(self)
        d["episodes_count"] = len(self.returns)
        d["termination"] = self.termination_counts
        d["steps_per_second"] = self.steps_per_second
        if not with_episodes:
            d.pop("episodes")
        return d


# Two-sided 97.5 % Student t quantiles for small samples; 1.96 beyond.
_T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    25: 2.060,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}


def confidence_interval(values: list[float]) -> tuple[float, float]:
    """95 % t-interval of the mean: honest about how little 5 or 20 episodes say."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return (mean, mean)
    df = n - 1
    t = next((_T975[k] for k in sorted(_T975) if k >= df), 1.96)
    half = t * statistics.stdev(values) / math.sqrt(n)
    return (mean - half, mean + half)


def _summarize(prog, renv, split, episodes, isolation, env_steps, seconds, success_note=None) -> EvalResult:
    return _from_episodes(
        episodes,
        split=split,
        env_id=renv.id,
        env_label=renv.label(),
        gymnasium_version=renv.gymnasium_version,
        env_steps=env_steps,
        seconds=seconds,
        isolation=isolation,
        program_sha256=prog.sha256,
        notice=renv.notice,
        success_note=success_note,
    )


def _from_episodes(episodes: list[Episode], **fields: Any) -> EvalResult:
    """Statistics are always recomputed from episodes, so merged results stay consistent."""
    returns = [ep.ret for ep in episodes]
    nan = float("nan")
    failures = [
        {"seed": ep.seed, "step": ep.length, "reason": ep.reason} for ep in episodes if ep.end == "failure"
    ]
    success = SuccessRate.of(ep.success for ep in episodes)
    return EvalResult(
        seeds=[ep.seed for ep in episodes],
        returns=returns,
        lengths=[ep.length for ep in episodes],
        mean=statistics.fmean(returns) if returns else nan,
        std=statistics.pstdev(returns) if len(returns) > 1 else 0.0,
        ci95=confidence_interval(returns) if returns else (nan, nan),
        median=statistics.median(returns) if returns else nan,
        min=min(returns) if returns else nan,
        max=max(returns) if returns else nan,
        failures=failures,
        episodes=episodes,
        success_rate=success.rate if success else None,
        success_ci95=success.ci95 if success else None,
        **fields,
    )


def combine_results(parts: list[EvalResult], split: str | None = None) -> EvalResult:
    """One result over the union of episodes, so a full evaluation can reuse a cheap one."""
    first = parts[0]
    return _from_episodes(
        [ep for r in parts for ep in r.episodes],
        split=split or first.split,
        env_id=first.env_id,
        env_label=first.env_label,
        gymnasium_version=first.gymnasium_version,
        env_steps=sum(r.env_steps for r in parts),
        seconds=sum(r.seconds for r in parts),
        isolation=next((r.isolation for r in parts if r.isolation), {}),
        program_sha256=first.program_sha256,
        notice=first.notice,
        success_note=next((r.success_note for r in parts if r.success_note), None),
    )
