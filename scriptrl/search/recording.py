"""Storing what the generators deliver: each candidate once, and every call it cost.

A candidate is stored before it races, valid or not, with the generator call that wrote it; a
paid call that only rediscovered a known program still counts toward cost. Calls that produced
no candidate (failed or unusable model replies) and generator notices are drained into the store
before each race.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scriptrl.generators.base import Candidate, GeneratorCall
from scriptrl.program import Program, check_source
from scriptrl.store import CallRecord

if TYPE_CHECKING:
    from scriptrl.search.loop import Search


def record_candidate(s: Search, c: Candidate) -> int | None:
    """Store a candidate once; return its id if it may race (valid and new in this round; a
    program first stored in an earlier round is a rediscovery, not a new candidate)."""
    prog = Program(c.source)
    existing = s.store.find_by_norm_hash(prog.normalized_hash)
    if existing is not None:
        call = c.call
        if call is not None and (call.prompt_tokens or call.completion_tokens or call.cost_usd):
            # a paid call that only rediscovered a known program still counts toward cost
            s.store.add_call(call_record(c.generator, call, existing, c.temperature))
        row = s.store.program(existing)
        return existing if row["status"] != "invalid" and row["iteration"] == s.iteration else None
    problems = check_source(c.source, allow_module_state=s.cfg.allow_module_state)
    with s.store.transaction():
        pid = s.store.add_program(
            c.source,
            prog.normalized_hash,
            c.parents,
            c.generator,
            c.change,
            c.temperature,
            None,
            s.iteration,
            c.note,
            status="invalid" if problems else "new",
            error=problems[0] if problems else None,
        )
        s.store.add_call(call_record(c.generator, c.call, pid, c.temperature))
    return None if problems else pid


def drain_generators(s: Search) -> None:
    """Store what generators report besides candidates: calls that produced none (failed or
    unusable model replies, which still cost tokens) and notices such as a fallback."""
    lane = list(s.lane.generators) if s.lane is not None else []
    for gen in [*s.portfolio.generators.values(), *lane]:
        for label, call in gen.drain_calls():
            s.portfolio.charge(label, call)
            s.store.add_call(call_record(label, call, None, None))
        for kind, data in gen.drain_events():
            s.store.add_event(kind, {"iteration": s.iteration, **data})


def call_record(
    generator: str, call: GeneratorCall | None, pid: int | None, temperature: float | None
) -> CallRecord:
    if call is None:
        return CallRecord(generator, 0.0, program_id=pid, temperature=temperature)
    return CallRecord(
        generator,
        call.latency_s,
        call.prompt_tokens,
        call.completion_tokens,
        call.cost_usd,
        call.model,
        pid,
        call.ok,
        call.error,
        temperature,
    )
