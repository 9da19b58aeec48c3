"""What verify found: one row per property check and per robustness condition, and its time budget."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

#: Default wall-clock limit of one ``scriptrl verify`` run, and the share its property checks may use.
MAX_SECONDS = 120.0
CHECKS_SHARE = 0.45


@dataclasses.dataclass
class Budget:
    """One deadline for the whole run, handed out in shares so a slow program cannot starve the rest.

    Why shares: without them the first phase a slow program reaches (a property check
    shrinking a slow counterexample, or an episode crawling at 1.5 s a step) eats the
    whole limit and nothing after it runs; with them every phase ends on time and says
    what it could not finish.
    """

    seconds: float = MAX_SECONDS
    start: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def end(self) -> float:
        return self.start + self.seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def share(self, parts: int, until: float | None = None) -> float:
        """A deadline: an equal share of what is left (before ``until``) among ``parts`` phases."""
        end = min(self.end, until) if until is not None else self.end
        now = time.monotonic()
        return now + max(0.0, end - now) / max(parts, 1)


@dataclasses.dataclass
class Check:
    name: str
    passed: bool | None  # None: not applicable, or not finished in time
    detail: str
    counterexample: Any = None
    examples: int = 0
    finished: bool = True


@dataclasses.dataclass
class Robustness:
    condition: str
    mean: float | None
    ci95: tuple[float, float] | None
    random: float | None
    retention: float | None
    passed: bool | None  # None: reference, not applicable, below a level without --gate, or not finished
    detail: str = ""
    warning: bool = False  # below the stated level, reported as a measured figure (no --gate)
    finished: bool = True


@dataclasses.dataclass
class VerifyReport:
    env_label: str
    program: str
    checks: list[Check]
    robustness: list[Robustness]
    bounds: list[dict]
    isolation: dict[str, str]
    min_retention: float
    gate: bool = False
    max_seconds: float = MAX_SECONDS
    seconds: float = 0.0
    levels: str = ""

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks) and all(
            r.passed is not False for r in self.robustness
        )

    @property
    def complete(self) -> bool:
        return all(c.finished for c in self.checks) and all(r.finished for r in self.robustness)

    def failures(self) -> list[str]:
        out = [f"{c.name}: {c.detail}" for c in self.checks if c.passed is False]
        return out + [f"robustness [{r.condition}]: {r.detail}" for r in self.robustness if r.passed is False]

    def unfinished(self) -> list[str]:
        out = [f"{c.name}: {c.detail}" for c in self.checks if not c.finished]
        return out + [f"robustness [{r.condition}]: {r.detail}" for r in self.robustness if not r.finished]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["passed"] = self.passed
        d["complete"] = self.complete
        return d
