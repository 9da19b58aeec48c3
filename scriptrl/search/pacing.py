"""How much a slow generator writes per round: as many programs as fit its measured speed.

A model on this machine's CPU writes a program in 5 to 30 s (minutes on a loaded machine); asking
it for 16 first programs and 8 children per round made a 6-iteration CartPole run take over 15
minutes. Instead each round (the first programs count as one) gives the model ``round_seconds``
of writing on average (``ModelTime``): it writes as many of the round's children as fit its
measured seconds per program, the others are written by a fast generator (the offline mutator)
at once and race while the model writes, and the evaluators tune constants in the gaps. A model
call is not started when its measured duration would overdraw the round's budget, and a model
slower than a round writes every few rounds. So a run with a slow model takes about
``(iterations + 1) * round_seconds`` plus at most one call and the final evaluations.

With ``--max-seconds`` a round never gets more than the time left; with ``--max-iterations`` as
well, it gets the time left divided by the rounds still to come.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

#: Seconds of model writing per round when the run does not say (``--llm-round-seconds``).
DEFAULT_ROUND_SECONDS = 60.0


@dataclass(frozen=True)
class RoundPlan:
    """What the model writes this round: how many programs, within how many seconds."""

    allowance_s: float  # this round's share of the run's model time
    budget_s: float  # seconds the model may write this round: the allowance plus what earlier rounds left
    model_programs: int  # children (or first programs) given to the model
    fast_programs: int  # children given to the fast generator instead
    seconds_per_program: float | None  # the measurement the plan was made from

    def fits(self, spent_s: float, seconds_per_program: float | None) -> bool:
        """Whether one more model program, at its measured duration, stays within the budget
        after ``spent_s`` seconds of this round's writing (unmeasured: yes, to measure it)."""
        return seconds_per_program is None or spent_s + seconds_per_program <= self.budget_s


class ModelTime:
    """The run's account of model writing time: each round deposits its allowance and pays what
    the model actually took. A model slower than a round therefore writes every few rounds
    instead of stretching every round to its call time, so an iteration count keeps predicting
    the run time; the balance is capped at one round plus one program, so no burst builds up."""

    def __init__(self) -> None:
        self.balance = 0.0

    def open(self, allowance_s: float, seconds_per_program: float | None) -> float:
        cap = allowance_s + (seconds_per_program or 0.0)
        self.balance = min(self.balance + allowance_s, cap)
        return self.balance

    def pay(self, seconds: float) -> None:
        self.balance -= max(0.0, seconds)


def round_allowance(
    round_seconds: float | None,
    max_seconds: float | None,
    seconds_used: float,
    max_iterations: int | None,
    iteration: int,
) -> float:
    """Seconds of model writing this round: the configured per-round time (60 s by default),
    or less when the run's time budget leaves less; with both a time and an iteration budget
    and no per-round time given, the time left spread over the rounds still to come."""
    if max_seconds is None:
        return round_seconds if round_seconds is not None else DEFAULT_ROUND_SECONDS
    left = max(0.0, max_seconds - seconds_used)
    if max_iterations is None:
        return min(left, round_seconds if round_seconds is not None else DEFAULT_ROUND_SECONDS)
    spread = left / max(1, max_iterations - iteration + 1)
    return spread if round_seconds is None else min(round_seconds, spread)


def model_share(wanted: int, budget_s: float, seconds_per_program: float | None) -> int:
    """How many of ``wanted`` programs the model writes in ``budget_s``: all of them until its
    speed is measured (the first program measures it), else as many as fit (maybe none)."""
    if wanted <= 0:
        return 0
    if seconds_per_program is None or seconds_per_program <= 0:
        return wanted
    return max(0, min(wanted, int(budget_s // seconds_per_program)))


def plan_round(
    wanted: int, allowance_s: float, budget_s: float, seconds_per_program: float | None
) -> RoundPlan:
    n = model_share(wanted, budget_s, seconds_per_program)
    return RoundPlan(allowance_s, budget_s, n, wanted - n, seconds_per_program)


def predicted_seconds(
    iterations: int, round_seconds: float | None, seconds_per_program: float | None, wanted: int
) -> float | None:
    """Model writing time for ``iterations`` more rounds (the first programs not included): what
    an iteration count costs with this model, shown in the live view."""
    if seconds_per_program is None:
        return None
    allowance = round_seconds if round_seconds is not None else DEFAULT_ROUND_SECONDS
    return iterations * min(allowance, wanted * seconds_per_program)


class ProgramClock:
    """Wall seconds a slow generator took per program (repairs and failed calls included),
    measured by the search around each request: the one figure a round is sized by."""

    def __init__(self, keep: int = 8) -> None:
        self._recent: deque[float] = deque(maxlen=keep)

    def add(self, seconds: float) -> None:
        self._recent.append(max(0.0, float(seconds)))

    @property
    def seconds_per_program(self) -> float | None:
        return statistics.median(self._recent) if self._recent else None
