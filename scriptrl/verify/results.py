"""What verify found: one row per property check and per robustness condition."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class Check:
    name: str
    passed: bool | None  # None: not applicable
    detail: str
    counterexample: Any = None
    examples: int = 0


@dataclasses.dataclass
class Robustness:
    condition: str
    mean: float | None
    ci95: tuple[float, float] | None
    random: float | None
    retention: float | None
    passed: bool | None
    detail: str = ""


@dataclasses.dataclass
class VerifyReport:
    env_label: str
    program: str
    checks: list[Check]
    robustness: list[Robustness]
    bounds: list[dict]
    isolation: dict[str, str]
    min_retention: float

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks) and all(r.passed is not False for r in self.robustness)

    def failures(self) -> list[str]:
        out = [f"{c.name}: {c.detail}" for c in self.checks if c.passed is False]
        return out + [f"robustness [{r.condition}]: {r.detail}" for r in self.robustness if r.passed is False]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["passed"] = self.passed
        return d

