"""Temperature: the one knob for exploration against exploitation, shared by every generator.

``adaptive`` cools while the search improves and heats up when it stagnates;
``fixed:T`` holds T; ``anneal:HI:LO`` cools linearly over the iteration budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from scriptrl.errors import UserError

T_MIN, T_MAX = 0.1, 1.5


@dataclass
class Temperature:
    mode: str = "adaptive"
    value: float = 1.0
    hi: float = 1.2
    lo: float = 0.2
    stagnant: int = 0
    patience: int = 3

    @classmethod
    def parse(cls, spec: str | float | None) -> Temperature:
        if spec is None or spec == "adaptive":
            return cls()
        if isinstance(spec, int | float):
            return cls(mode="fixed", value=_clamp(float(spec)))
        parts = str(spec).split(":")
        try:
            if parts[0] == "fixed" and len(parts) == 2:
                return cls(mode="fixed", value=_clamp(float(parts[1])))
            if parts[0] == "anneal" and len(parts) == 3:
                hi, lo = _clamp(float(parts[1])), _clamp(float(parts[2]))
                return cls(mode="anneal", value=hi, hi=hi, lo=lo)
            return cls(mode="fixed", value=_clamp(float(spec)))
        except ValueError:
            pass
        raise UserError(f"bad --temperature '{spec}' (use a number, adaptive, fixed:T or anneal:HI:LO)")

    def update(self, improved: bool, iteration: int, max_iterations: int | None) -> float:
        if self.mode == "fixed":
            return self.value
        if self.mode == "anneal":
            frac = min(1.0, iteration / max(1, max_iterations or 100))
            self.value = self.hi + (self.lo - self.hi) * frac
            return self.value
        if improved:
            self.stagnant = 0
            self.value = max(T_MIN, self.value * 0.8)
        else:
            self.stagnant += 1
            if self.stagnant >= self.patience:
                self.value = min(T_MAX, self.value * 1.4)
                self.stagnant = 0
        return self.value

    def to_state(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_state(cls, state: dict) -> Temperature:
        return cls(**state)


def _clamp(t: float) -> float:
    if not T_MIN <= t <= T_MAX:
        raise UserError(f"temperature {t} is outside [{T_MIN}, {T_MAX}] (pick a value in that range)")
    return t
