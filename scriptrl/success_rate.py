"""The success rate of a set of episodes and its Wilson 95 % interval.

Why Wilson and not "p ± 1.96·sqrt(p(1-p)/n)": the normal interval collapses to [1, 1] when
all 50 held-out episodes succeed, claiming certainty that 50 episodes cannot give, and leaves
[0, 1] at the edges; Wilson's interval stays inside [0, 1] and is honest at 0 % and 100 %.

Import-light on purpose (no gymnasium): the store, ``compare`` and the report read rates back
from stored episode digests, where each episode carries ``success`` (absent in runs written
before success was recorded, which then have no rate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Z95 = 1.96  # as the return intervals use


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (``(0, 1)`` for no episodes)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class SuccessRate:
    successes: int
    episodes: int

    @property
    def rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.episodes)

    def label(self) -> str:
        """``success 96 % [91, 98]``: the rate and its interval in percent, as results print it."""
        return format_success(self.rate, self.ci95)

    def percent(self) -> str:
        """``96 % [91, 98] (48/50)``: for a table whose row is already named "success"."""
        return f"{format_percent(self.rate, self.ci95)} ({self.successes}/{self.episodes})"

    @classmethod
    def of(cls, flags: Iterable[bool | None]) -> SuccessRate | None:
        """The rate over episodes' success flags; None when no episode has one (success undefined)."""
        known = [bool(f) for f in flags if f is not None]
        return cls(sum(known), len(known)) if known else None

    @classmethod
    def of_digest(cls, digest: Iterable[Mapping[str, Any]] | None) -> SuccessRate | None:
        """The rate of a stored evaluation's episode digest (None for runs stored without it)."""
        return cls.of(e.get("success") for e in (digest or ()) if isinstance(e, Mapping))


def format_success(rate: float | None, ci95: Iterable[float] | None = None) -> str:
    """``success 96 % [91, 98]``, ``success 96 %`` without an interval, ``""`` when undefined."""
    return "" if rate is None else "success " + format_percent(rate, ci95)


def format_percent(rate: float, ci95: Iterable[float] | None = None) -> str:
    """``96 % [91, 98]``: a rate and its interval in whole percent."""
    text = f"{100 * rate:.0f} %"
    ci = list(ci95) if ci95 is not None else []
    if len(ci) == 2 and None not in ci:
        text += f" [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"
    return text
