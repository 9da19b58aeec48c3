"""Rounds with a slow generator (a language model): race each program as it arrives, tune meanwhile.

The writing happens in a background thread (``search/overlap.py``); everything that touches the
run store stays on the search's thread. While nothing is waiting, the evaluators tune a leader's
constants, with fewer evaluations in flight when the model runs on this machine.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from scriptrl.generators.base import Candidate
from scriptrl.search.overlap import overlapped
from scriptrl.search.pacing import RoundPlan, plan_round, round_allowance

if TYPE_CHECKING:
    from scriptrl.search.loop import ChildPlan, Search

#: First programs a run wants at the least: when the model's share of the first round leaves
#: fewer valid ones, the fast generator writes the rest (an empty population ends the run).
MIN_FIRST_PROGRAMS = 4

#: ``write(emit, stopped)``: emits ``(candidate, opponent id or None)`` until done or stopped.
Writer = Callable[[Callable[[tuple[Candidate, int | None]], None], Callable[[], bool]], None]


def overlapped_round(s: Search, write: Writer) -> int:
    """Race candidates as the writer delivers them; tune a leader's constants while it writes."""
    wins = [0]

    def consume(item: tuple[Candidate, int | None]) -> None:
        child, opponent = item
        s.activity = "racing a new program"
        wins[0] += s._consider(
            [child], {} if opponent is None else {0: opponent}, s.stream.draw(s.rule.episodes)
        )

    def idle() -> bool:
        if s.population.size() == 0:
            return False
        s.bank.width = width_beside_model(s)
        s.activity = "tuning constants while the model writes"
        try:
            wins[0] += s.tuning.round(s.temperature.value, 1, "while the generator writes") or 0
        finally:
            s.bank.width = None
        return True

    overlapped(write, consume, idle, lambda: s._stop(mid_iteration=True) is not None)
    return wins[0]


def this_round(s: Search, wanted: int) -> RoundPlan:
    """The slow generator's share of a round, from its measured speed and the time left."""
    allowance = round_allowance(
        s.cfg.llm_round_seconds, s.cfg.max_seconds, s.seconds(), s.cfg.max_iterations, s.iteration
    )
    spp = s.clock.seconds_per_program
    plan = plan_round(wanted, allowance, s.model_time.open(allowance, spp), spp)
    s.round_plan = plan
    return plan


def _timed(s: Search, t0: float) -> float:
    """Account one model program that took since ``t0``; its seconds."""
    took = time.monotonic() - t0
    s.clock.add(took)
    s.model_time.pay(took)
    return took


def write_initial(
    s: Search, emit: Callable[[tuple[Candidate, None]], None], stopped: Callable[[], bool]
) -> None:
    """The first programs, streamed: the user's ``--init`` program, then the generators' own,
    the slow one's for as long as its round allows; the fast generator fills a short population."""
    rng = random.Random(f"{s.cfg.seed}:init")
    if s.cfg.init:
        emit((s._user_init(s.cfg.init), None))
    plan = this_round(s, s.cfg.initial_programs)
    valid, out_of_time, spent = 0, False, 0.0
    stream = s.portfolio.initial_stream(s.ctx, s.cfg.initial_programs, s.temperature.value, rng)
    t0 = time.monotonic()
    try:
        for c in stream:
            emit((c, None))
            by_model = c.call is not None and c.call.model is not None
            valid += c.call is None or c.call.ok
            if by_model:
                spent += _timed(s, t0)
            t0 = time.monotonic()
            out_of_time = by_model and not plan.fits(spent, s.clock.seconds_per_program)
            if stopped() or out_of_time:
                break
    finally:
        stream.close()  # type: ignore[attr-defined]  # a generator: no further model call starts
    short = MIN_FIRST_PROGRAMS - valid
    # with --no-evolution the first programs are the slow generator's alone: nobody fills them up
    only_slow = all(g.slow for g in s.portfolio.generators.values())
    if s.cfg.evolve and out_of_time and short > 0 and not stopped() and only_slow:
        for c in s.portfolio.filler.initial(s.ctx, short, s.temperature.value, rng):
            emit((c, None))


def slow_children(s: Search, plans: list[ChildPlan], temp: float) -> int:
    """A round's children: the slow generator writes as many as fit its round's budget (maybe
    none), the fast generator the others, first, so they race while the model writes."""
    slow = [p for p in plans if p.generator.slow]
    plan = this_round(s, len(slow))
    filler = s.portfolio.filler
    ordered = [p for p in plans if not p.generator.slow]
    ordered += [dataclasses.replace(p, generator=filler) for p in slow[plan.model_programs :]]
    ordered += s.with_feedback(slow[: plan.model_programs])

    def write(emit, stopped) -> None:
        spent = 0.0
        for p in ordered:
            if stopped():
                return
            if p.generator.slow and not plan.fits(spent, s.clock.seconds_per_program):
                p = dataclasses.replace(p, generator=filler)
            t0 = time.monotonic()
            s._write_children([p], temp, emit)
            if p.generator.slow:
                spent += _timed(s, t0)

    return overlapped_round(s, write)


def width_beside_model(s: Search) -> int | None:
    """Evaluations in flight while a model on this machine writes: the model's threads keep
    their cores (on 2 cores one busy evaluator slowed a 1-thread model 1.55x, two 3.2x:
    benchmarks/llm_contention.py). None: no limit (a served model, or evaluators on other machines)."""
    threads = s.portfolio.local_threads
    if not threads or not s.executor.on_this_machine or not s.executor.workers:
        return None
    return max(1, s.executor.workers - threads)
