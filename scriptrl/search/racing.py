"""Racing on paired fresh episodes: a candidate earns more episodes only while it can still win.

Every candidate of a round plays the round's seeds (drawn fresh from the training stream), and
so does the program it must beat (its parent, or the incumbent of a tuning campaign): the
returns are paired seed by seed (common random numbers), so the difference between two programs
is measured without the variance between episodes. After the first few episodes and after each
further chunk, a one-sided upper confidence bound of the mean paired difference decides: once it
is at or below zero the candidate cannot be shown better and stops. A candidate still standing
after the round's last episode wins if its mean paired difference is positive.

Ties: when every paired difference of returns is zero (a sparse reward: both programs score 0
everywhere, or both 500 on CartPole), returns say nothing, and the race ranks by how far the
episodes got instead: the episode length, then the number of distinct observations in the
episode digest's tail. A win decided that way is flagged ``tie_break`` (the run store records it).

Without an opponent (the first programs of a run) a candidate races the round's leader.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# One-sided 90 % Student t quantiles by degrees of freedom; 1.282 beyond the table.
_T90 = {
    1: 3.078,
    2: 1.886,
    3: 1.638,
    4: 1.533,
    5: 1.476,
    6: 1.440,
    7: 1.415,
    8: 1.397,
    9: 1.383,
    10: 1.372,
    15: 1.341,
    20: 1.325,
    30: 1.310,
    60: 1.296,
}


def t90(df: int) -> float:
    return next((_T90[k] for k in sorted(_T90) if k >= df), 1.282)


@dataclass(frozen=True)
class Played:
    """One episode as a race sees it: its seed, return and how far it got (for ties)."""

    seed: int
    ret: float
    length: int = 0
    spread: int = 0  # distinct observations in the digest's tail

    @property
    def progress(self) -> tuple[int, int]:
        return (self.length, self.spread)


@dataclass(frozen=True)
class Entrant:
    pid: int
    source: str
    opponent: int | None  # the program it must beat; None: the round's leader


@dataclass
class Outcome:
    pid: int
    episodes: list[Played]
    won: bool = False
    tie_break: bool = False
    opponent: int | None = None


@dataclass(frozen=True)
class RaceRule:
    """When a round's episodes are played: ``first`` for everyone, then ``chunk`` more at a time
    up to ``episodes``."""

    first: int = 3
    chunk: int = 3
    episodes: int = 10

    def schedule(self) -> list[int]:
        out, n = [], min(self.first, self.episodes)
        while True:
            out.append(n)
            if n >= self.episodes:
                return out
            n = min(self.episodes, n + max(1, self.chunk))


def can_still_win(diffs: Sequence[float]) -> bool:
    """Whether the upper 90 % confidence bound of the mean paired difference is above zero
    (one episode alone says nothing about the spread: it always goes on)."""
    n = len(diffs)
    if n < 2:
        return True
    mean = statistics.fmean(diffs)
    ucb = mean + t90(n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return ucb > 0


def paired(a: list[Played], b: list[Played]) -> tuple[list[float], bool]:
    """Differences of ``a`` over ``b`` on their common episodes; by progress when returns all tie."""
    n = min(len(a), len(b))
    diffs = [a[i].ret - b[i].ret for i in range(n)]
    if n and all(d == 0 for d in diffs):
        return [float(a[i].length - b[i].length) or float(a[i].spread - b[i].spread) for i in range(n)], True
    return diffs, False


#: ``play([(pid, source, seeds), ...])`` -> the episodes of each request, in order.
Player = Callable[[list[tuple[int, str, list[int]]]], list[list[Played]]]


@dataclass
class Race:
    entrants: list[Entrant]
    opponents: dict[int, str]  # pid -> source of every program some entrant must beat
    seeds: list[int]
    rule: RaceRule
    played: dict[int, list[Played]] = field(default_factory=dict)

    def run(self, play: Player) -> dict[int, Outcome]:
        alive = {e.pid for e in self.entrants}
        by_pid = {e.pid: e for e in self.entrants}
        sources = {**self.opponents, **{e.pid: e.source for e in self.entrants}}
        for upto in self.rule.schedule():
            if not alive:
                break
            need = set(alive) | {o for p in alive if (o := by_pid[p].opponent) is not None}
            requests = [(p, sources[p], self.seeds[len(self.played.get(p, [])) : upto]) for p in sorted(need)]
            requests = [r for r in requests if r[2]]
            for (p, _, _), eps in zip(requests, play(requests), strict=True):
                self.played.setdefault(p, []).extend(eps)
            leader = self._leader(alive)
            for p in sorted(alive):
                opp = by_pid[p].opponent if by_pid[p].opponent is not None else leader
                assert opp is not None  # p names its opponent, or p is free and so a leader exists
                if opp != p and not can_still_win(paired(self.played[p], self.played[opp])[0]):
                    alive.discard(p)
        return self._outcomes(alive, by_pid)

    def _leader(self, pids: set[int]) -> int | None:
        def key(p: int) -> tuple:
            eps = self.played[p]
            return (statistics.fmean(e.ret for e in eps), statistics.fmean(e.length for e in eps), -p)

        free = [p for p in pids if next(e for e in self.entrants if e.pid == p).opponent is None]
        return max(free, key=key, default=None)

    def _outcomes(self, alive: set[int], by_pid: dict[int, Entrant]) -> dict[int, Outcome]:
        out = {}
        for e in self.entrants:
            res = Outcome(e.pid, self.played.get(e.pid, []), opponent=e.opponent)
            if e.pid in alive:
                if e.opponent is None:
                    res.won = True  # a first program that kept up with the leader joins the population
                else:
                    diffs, tie = paired(self.played[e.pid], self.played[e.opponent])
                    res.won, res.tie_break = bool(diffs) and statistics.fmean(diffs) > 0, tie
            out[e.pid] = res
        return out
