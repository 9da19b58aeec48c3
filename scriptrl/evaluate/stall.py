"""Ending hopeless episodes early while screening: the stall rule.

A screen compares many candidates on few episodes; an episode whose observation has stopped
moving (a cart pinned at a wall, a lander resting on the ground without touching down) or
whose return has not improved for a long time usually only burns steps until its time
limit. A ``StallRule`` ends it there, as its own termination reason (``stalled``), so the
result says the return is the return *so far*. It is off by default, and ``evaluate`` never
applies it to the holdout or audit split: the reported and audited scores are always full
episodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class StallRule:
    """When an episode counts as stalled; either test alone can end it (None turns a test off)."""

    steps: int = 100  # the window: this many steps without change
    obs_epsilon: float | None = 1e-6  # the observation moved no more than this (max abs) from where it stood
    min_improvement: float | None = None  # the return did not rise by more than this above its best

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"StallRule.steps must be at least 1 (got {self.steps})")


class StallWatch:
    """One episode's progress against a ``StallRule``."""

    __slots__ = ("rule", "anchor", "moved_at", "best", "improved_at")

    def __init__(self, rule: StallRule, obs: Any) -> None:
        self.rule = rule
        self.anchor = np.asarray(obs, dtype=np.float64).copy() if rule.obs_epsilon is not None else None
        self.moved_at = 0
        self.best = -math.inf
        self.improved_at = 0

    def update(self, obs: Any, ret: float, t: int) -> str | None:
        """After step ``t`` (1-based) with observation ``obs`` and return so far ``ret``: why the
        episode stalled, or None while it has not."""
        rule = self.rule
        if self.anchor is not None and rule.obs_epsilon is not None:
            now = np.asarray(obs, dtype=np.float64)
            if (
                now.shape != self.anchor.shape
                or float(np.max(np.abs(now - self.anchor), initial=0.0)) > rule.obs_epsilon
            ):
                self.anchor, self.moved_at = now.copy(), t
            elif t - self.moved_at >= rule.steps:
                return f"stalled: the observation moved less than {rule.obs_epsilon:g} in {rule.steps} steps"
        if rule.min_improvement is not None:
            if ret > self.best + rule.min_improvement:
                self.best, self.improved_at = ret, t
            elif t - self.improved_at >= rule.steps:
                return (
                    f"stalled: the return did not improve by more than {rule.min_improvement:g} "
                    f"in {rule.steps} steps"
                )
        return None


def stall_allowed(split: str, seeds: list[int]) -> bool:
    """Whether a stall rule may cut these episodes: never on the holdout or audit split, named
    or not (their seed ranges, as ``SeedSplits`` defines them), so reported scores stay full."""
    from scriptrl.seeds import SeedSplits

    if split in ("holdout", "audit"):
        return False
    splits = SeedSplits()
    return not any(lo <= s < hi for s in seeds for lo, hi in (splits.holdout, splits.audit))
