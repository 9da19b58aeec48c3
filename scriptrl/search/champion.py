"""The champion: the program whose holdout score the run reports, and when a leader earns holdout.

Holdout episodes never select children; they confirm. A population leader is confirmed on
``confirm_episodes`` fresh training episodes first, and gets a holdout evaluation when there is
no champion yet, when it reaches the target while the champion does not, or when its confirmed
gain over the champion is beyond the 95 % confidence interval of the difference of their means
(not a fixed fraction of the target: a gain of 3 points is real on a task scored in tenths).
It becomes the champion if its holdout is at least the champion's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scriptrl.search.population import Member

Z95 = 1.96


@dataclass
class Champion:
    id: int
    dev: float  # mean over the fresh training-stream episodes it had played when promoted
    holdout: float
    ci95: list[float]
    episodes: int = 0  # training episodes behind ``dev``
    var_mean: float = math.inf  # variance of that mean
    audit: float | None = None
    # holdout success rate and its Wilson 95 % interval, when the environment defines success
    success: float | None = None
    success_ci95: list[float] | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["var_mean"] = None if not math.isfinite(self.var_mean) else self.var_mean
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> Champion | None:
        if not d:
            return None
        kw = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        kw["var_mean"] = math.inf if kw.get("var_mean") is None else kw["var_mean"]
        return cls(**kw)


def gain_beyond_ci(leader: Member, champion: Champion, current: Member | None) -> bool:
    """Whether the leader's training mean beats the champion's beyond the 95 % CI of the difference
    (the champion's own stats as it plays on, when it is still in the population)."""
    c_mean, c_var = (
        (current.score, current.variance_of_mean()) if current else (champion.dev, champion.var_mean)
    )
    var = leader.variance_of_mean() + c_var
    if not math.isfinite(var):
        return False
    return leader.score - c_mean > Z95 * math.sqrt(var)


def deserves_holdout(
    leader: Member, champion: Champion | None, current: Member | None, target: float | None
) -> bool:
    if champion is None:
        return True
    if leader.id == champion.id:
        return False
    if target is not None and leader.score >= target > champion.holdout:
        return True
    return gain_beyond_ci(leader, champion, current)


def overfitting_gap(champion: Champion) -> tuple[float, bool]:
    """Training mean minus holdout mean, and whether that gap is beyond the 95 % CI."""
    gap = champion.dev - champion.holdout
    half = (champion.ci95[1] - champion.ci95[0]) / 2 if len(champion.ci95) == 2 else 0.0
    var = (half / Z95) ** 2 + (champion.var_mean if math.isfinite(champion.var_mean) else 0.0)
    return gap, gap > Z95 * math.sqrt(var) if var > 0 else gap > 0
