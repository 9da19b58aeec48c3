"""How much a slow generator writes per round: as many programs as fit its measured speed.

A model on this machine's CPU writes a program in 5 to 30 s; asking it for 16 first programs and 8
children per round made a 6-iteration CartPole run take over 15 minutes. Instead each round (the
first programs count as one) gives the model at most ``round_seconds`` of writing: it writes
``floor(round_seconds / seconds_per_program)`` of the round's children (at least one, so it is
always heard), the others are written by a fast generator (the offline mutator) at once and race
while the model writes, and the evaluators tune constants in the gaps. A model call is also not
started when its measured duration would carry it past the round's end. So a run with a slow
model takes at most about ``(iterations + 1) * round_seconds`` plus the final evaluations.

With ``--max-seconds`` a round never gets more than the time left; with ``--max-iterations`` as
well, it gets the time left divided by the rounds still to come.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass

#: Seconds of model writing per round when the run does not say (``--llm-round-seconds``).
DEFAULT_ROUND_SECONDS = 60.0


@dataclass(frozen=True)
class RoundPlan:
    """What the model writes this round and by when."""

    allowance_s: float  # seconds of model writing this round
    model_programs: int  # children (or first programs) given to the model
    fast_programs: int  # children given to the fast generator instead
    seconds_per_program: float | None  # the measurement the plan was made from
    deadline: float  # time.monotonic() after which no model call starts (but the round's first)

    def fits(self, seconds_per_program: float | None, now: float | None = None) -> bool:
        """Whether one more model program, at its measured duration, ends before the round does."""
        now = time.monotonic() if now is None else now
        return seconds_per_program is None or now + seconds_per_program <= self.deadline


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


def model_share(wanted: int, allowance_s: float, seconds_per_program: float | None) -> int:
    """How many of ``wanted`` programs the model writes in ``allowance_s``: all of them until its
    speed is measured (the first program measures it), else as many as fit, at least one."""
    if wanted <= 0:
        return 0
    if seconds_per_program is None or seconds_per_program <= 0:
        return wanted
    return max(1, min(wanted, int(allowance_s // seconds_per_program)))


def plan_round(
    wanted: int,
    allowance_s: float,
    seconds_per_program: float | None,
    now: float | None = None,
) -> RoundPlan:
    n = model_share(wanted, allowance_s, seconds_per_program)
    start = time.monotonic() if now is None else now
    return RoundPlan(allowance_s, n, wanted - n, seconds_per_program, start + allowance_s)


def predicted_seconds(
    iterations: int, round_seconds: float | None, seconds_per_program: float | None, wanted: int
) -> float | None:
    """Model writing time for ``iterations`` more rounds (the first programs not included): what
    an iteration count costs with this model, shown in the live view."""
    if seconds_per_program is None:
        return None
    allowance = round_seconds if round_seconds is not None else DEFAULT_ROUND_SECONDS
    per_round = model_share(wanted, allowance, seconds_per_program) * seconds_per_program
    return iterations * per_round


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
