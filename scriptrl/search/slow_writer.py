"""Rounds with a slow generator (a language model): race each program as it arrives, tune meanwhile.

The writing happens in a background thread (``search/overlap.py``); everything that touches the
run store stays on the search's thread. While nothing is waiting, the evaluators tune a leader's
constants, with fewer evaluations in flight when the model runs on this machine.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from scriptrl.generators.base import Candidate
from scriptrl.search.overlap import overlapped

if TYPE_CHECKING:
    from scriptrl.search.loop import Search

#: ``write(emit, stopped)``: emits ``(candidate, opponent id or None)`` until done or stopped.
Writer = Callable[[Callable[[tuple[Candidate, int | None]], None], Callable[[], bool]], None]


def overlapped_round(s: Search, write: Writer) -> int:
    """Race candidates as the writer delivers them; tune a leader's constants while it writes."""
    wins = [0]

    def consume(item: tuple[Candidate, int | None]) -> None:
        child, opponent = item
        wins[0] += s._consider(
            [child], {} if opponent is None else {0: opponent}, s.stream.draw(s.rule.episodes)
        )

    def idle() -> bool:
        if s.population.size() == 0:
            return False
        s.bank.width = width_beside_model(s)
        try:
            wins[0] += s.tuning.round(s.temperature.value, 1, "while the generator writes") or 0
        finally:
            s.bank.width = None
        return True

    overlapped(write, consume, idle, lambda: s._stop(mid_iteration=True) is not None)
    return wins[0]


def write_initial(
    s: Search, emit: Callable[[tuple[Candidate, None]], None], stopped: Callable[[], bool]
) -> None:
    """The first programs, streamed: the user's ``--init`` program, then the generators' own."""
    rng = random.Random(f"{s.cfg.seed}:init")
    if s.cfg.init:
        emit((s._user_init(s.cfg.init), None))
    for c in s.portfolio.initial_stream(s.ctx, s.cfg.initial_programs, s.temperature.value, rng):
        emit((c, None))
        if stopped():
            return


def width_beside_model(s: Search) -> int | None:
    """Evaluations in flight while a model on this machine writes: the model's threads keep
    their cores (on 2 cores one busy evaluator slowed a 1-thread model 1.55x, two 3.2x:
    benchmarks/llm_contention.py). None: no limit (a served model, or evaluators on other machines)."""
    threads = s.portfolio.local_threads
    if not threads or not s.executor.on_this_machine or not s.executor.workers:
        return None
    return max(1, s.executor.workers - threads)
