"""The seed protocol in one place: which episode seeds select, which confirm, which audit.

Every part that names a seed reads it from here (search, baselines, verify, report, export,
the CLI), so the protocol cannot drift between them. The split ranges are half-open
``(lo, hi)`` tuples, stored in a run's config as such.

The *training stream* is where a search draws fresh episodes for each round of comparison
(common random numbers: every candidate of a round plays the same seeds). It starts above every
named split, so no selection ever sees a holdout or audit seed.
"""

from __future__ import annotations

from dataclasses import dataclass

from scriptrl.errors import UserError

SPLIT_NAMES = ("dev", "holdout", "audit")
DEV = (0, 20)
HOLDOUT = (1000, 1050)
AUDIT = (2000, 2050)
TRAIN_START = 100_000


@dataclass(frozen=True)
class SeedSplits:
    """Named, disjoint seed ranges: search on dev (and the training stream), report holdout,
    audit once at the end."""

    dev: tuple[int, int] = DEV
    holdout: tuple[int, int] = HOLDOUT
    audit: tuple[int, int] = AUDIT
    train_start: int = TRAIN_START

    def __post_init__(self) -> None:
        ranges = sorted((getattr(self, n), n) for n in SPLIT_NAMES)
        for (lo, hi), name in ranges:
            if hi <= lo:
                raise UserError(f"the {name} split {lo}-{hi - 1} is empty (give a range lo < hi)")
        for ((_, hi_a), a), ((lo_b, _), b) in zip(ranges, ranges[1:], strict=False):
            if lo_b < hi_a:
                raise UserError(f"the {a} and {b} seed splits overlap (make the ranges disjoint)")
        if self.train_start < max(hi for (_, hi), _ in ranges):
            raise UserError("the training stream must start above every named split (raise train_start)")

    def range_of(self, split: str) -> tuple[int, int]:
        if split not in SPLIT_NAMES:
            raise UserError(f"unknown split '{split}' (use dev, holdout or audit)")
        return getattr(self, split)

    def size(self, split: str) -> int:
        lo, hi = self.range_of(split)
        return hi - lo

    def seeds(self, split: str, episodes: int | None = None) -> list[int]:
        """The first ``episodes`` seeds of a split; asking for more than it holds is an error,
        never a silent step into the next split."""
        lo, hi = self.range_of(split)
        n = hi - lo if episodes is None else episodes
        if n < 1:
            raise UserError(f"--episodes must be at least 1 (got {n})")
        if n > hi - lo:
            raise UserError(
                f"--episodes {n} is more than the {split} split holds ({hi - lo} seeds, {lo}-{hi - 1}); "
                f"ask for at most {hi - lo}"
            )
        return list(range(lo, lo + n))

    def train(self, start: int, n: int) -> list[int]:
        """Seeds ``start .. start + n - 1`` of the training stream (``start`` counts episodes
        already drawn, so a run that stores it replays the same seeds when resumed)."""
        if start < 0 or n < 0:
            raise ValueError("training-stream positions are non-negative")
        return list(range(self.train_start + start, self.train_start + start + n))

    def label(self, split: str) -> str:
        lo, hi = self.range_of(split)
        return f"{lo}-{hi - 1}"

    @classmethod
    def from_config(cls, cfg: dict) -> SeedSplits:
        """The splits a stored run config names (older runs stored only some of them)."""
        kw: dict[str, tuple[int, ...] | int] = {n: tuple(cfg[n]) for n in SPLIT_NAMES if cfg.get(n)}
        if cfg.get("train_start") is not None:
            kw["train_start"] = int(cfg["train_start"])
        return cls(**kw)  # type: ignore[arg-type]


DEFAULT = SeedSplits()
