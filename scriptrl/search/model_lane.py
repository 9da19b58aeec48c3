"""The model lane: a slow generator (a language model) writes beside the search, never in its way.

With a model on this machine's CPU a call takes 5-40 s; a round that waited for its model
children made a 6-iteration CartPole run take over 15 minutes, and the evaluators idled or tuned
in the gaps. Here the search runs exactly as the offline search does (the fast generator writes
every round's children, tuning rounds included), and the model's calls run in background threads
beside it: each finished reply joins the search at the next iteration boundary, raced against the
parent it was written from (a first program against the population's weakest member), and joins
the population if it wins. ``--max-iterations`` counts the search's rounds, not model calls.

How many calls are in flight follows the measured seconds per call: enough that a program arrives
about once per search iteration, never more than the generator allows at once (``max_in_flight``:
one for the embedded server, which answers one request at a time). Only the planning (choosing a
parent, reading its stored feedback) and the recording happen on the search's thread; the threads
only produce source text. A reply identical to its parent is stored as a call with an
``unchanged: ...`` error and not evaluated. When the run ends with calls in flight they are
abandoned (an ``llm_abandoned`` event says how many and for how long), and a ``model_lane`` event
sums up what the model contributed: calls, programs raced, programs that joined, and whether the
champion was written by the model or descends from one of its programs.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scriptrl.generators.base import Candidate, Generator, GeneratorCall, ParentInfo
from scriptrl.program import Program
from scriptrl.search.parent_context import with_facts
from scriptrl.search.recording import call_record, drain_generators, record_candidate

if TYPE_CHECKING:
    from scriptrl.search.loop import Search

#: The model's own first programs: its structural ideas, before it rewrites the search's leaders.
FIRST_PROGRAMS = 2


@dataclass(frozen=True)
class Job:
    """One model call to make: a first program, or a rewrite of ``parent`` that must beat ``opponent``."""

    number: int
    generator: Generator
    parent: ParentInfo | None
    opponent: int | None
    temperature: float
    seed: str
    started: float


@dataclass
class Arrival:
    job: Job
    candidate: Candidate | None
    error: BaseException | None = None


class ModelLane:
    """The slow generators' calls, run beside the search (see the module docstring)."""

    def __init__(self, search: Search, generators: list[Generator]) -> None:
        self.s = search
        self.generators = generators
        self.arrived: queue.Queue[Arrival] = queue.Queue()
        self.in_flight: dict[int, Job] = {}
        self.started = 0
        self.first_programs = min(FIRST_PROGRAMS, search.cfg.initial_programs)
        self.raced = 0
        self.joined: list[int] = []  # model programs placed in the population
        self.unchanged = 0
        self.closed = False
        self._lock = threading.Lock()
        self._iteration_started = time.monotonic()
        self._iteration_seconds: list[float] = []
        self._saved_per_call: float | None = None  # a resumed run's last measured speed

    # --- on the search's thread ---------------------------------------------------------
    def step(self) -> int:
        """At an iteration boundary: race what arrived, then start calls up to the width; the wins."""
        now = time.monotonic()
        self._iteration_seconds = (self._iteration_seconds + [now - self._iteration_started])[-8:]
        self._iteration_started = now
        wins = self.take()
        self.top_up()
        return wins

    def width(self) -> int:
        """Calls in flight: about one program per search iteration, as far as the generator allows."""
        cap = max(1, min(g.max_in_flight for g in self.generators))
        per_call = self.seconds_per_call
        if per_call is None or not self._iteration_seconds:
            return 1
        per_iteration = max(0.1, sorted(self._iteration_seconds)[len(self._iteration_seconds) // 2])
        return max(1, min(cap, math.ceil(per_call / per_iteration)))

    def top_up(self) -> None:
        if self.closed or not any(not getattr(g, "degraded", None) for g in self.generators):
            return
        while len(self.in_flight) < self.width():
            job = self._plan()
            if job is None:
                return
            with self._lock:
                self.in_flight[job.number] = job
            threading.Thread(
                target=self._run, args=(job,), name=f"scriptrl-model-{job.number}", daemon=True
            ).start()

    def _plan(self) -> Job | None:
        s = self.s
        n = self.started
        gen = self.generators[n % len(self.generators)]
        temp = s.temperature.value
        seed = f"{s.cfg.seed}:lane:{n}"
        if n < self.first_programs or not s.population.size():
            job = Job(n, gen, None, _weakest(s), temp, seed, time.monotonic())
        else:
            rng = random.Random(seed)
            islands = [i for i in s.population.islands if i.members]
            member = islands[n % len(islands)].select(rng, temp)
            parent = s._parent(member)
            if s.cfg.llm_feedback:
                parent = with_facts(s, parent)
            job = Job(n, gen, parent, member.id, temp, seed, time.monotonic())
        self.started += 1
        return job

    def take(self) -> int:
        """Race every reply that has arrived; return how many beat the program they faced."""
        wins = 0
        while True:
            try:
                arrival = self.arrived.get_nowait()
            except queue.Empty:
                return wins
            wins += self._consider(arrival)

    def _consider(self, arrival: Arrival) -> int:
        s, job, cand = self.s, arrival.job, arrival.candidate
        if arrival.error is not None:
            s.store.add_event("llm_error", {"iteration": s.iteration, "error": repr(arrival.error)[:300]})
            return 0
        if cand is None:  # a failed or unusable call: the generator hands it over via drain_calls
            return 0
        cand.generator = cand.generator or f"{job.generator.name}.{'mutate' if job.parent else 'init'}"
        if job.parent is not None and _same_program(cand.source, job.parent.source):
            self._unchanged(cand, job.parent.id)
            return 0
        opponent = job.opponent if s.population.member(job.opponent or -1) is not None else None
        if opponent is None:  # a first program, or its parent left the population meanwhile
            opponent = _weakest(s)
        s.activity = "racing a model program"
        wins = s._consider([cand], {} if opponent is None else {0: opponent}, s.stream.draw(s.rule.episodes))
        pid = s.store.find_by_norm_hash(Program(cand.source).normalized_hash)
        if pid is not None and s.store.program(pid)["status"] != "invalid":
            self.raced += 1
            if s.population.member(pid) is not None and pid not in self.joined:
                self.joined.append(pid)
                s.store.add_event("model_program_joined", {"iteration": s.iteration, "program": pid})
        return wins

    def _unchanged(self, cand: Candidate, parent_id: int) -> None:
        """A reply that repeats its parent: stored as a call that yielded nothing, not evaluated."""
        self.unchanged += 1
        call = cand.call
        if call is not None:
            call = dataclasses.replace(
                call, ok=False, error=f"unchanged: the reply repeats program {parent_id}"
            )
        self.s.store.add_call(call_record(cand.generator, call, None, cand.temperature))

    def close(self) -> None:
        """The run ends: store what arrived, abandon what is in flight, sum up the model's share."""
        self.closed = True
        s = self.s
        while True:
            try:
                arrival = self.arrived.get_nowait()
            except queue.Empty:
                break
            if arrival.candidate is not None:  # a paid call is stored, though not raced any more
                record_candidate(s, arrival.candidate)
        drain_generators(s)  # repair rounds and failed calls the generators still hold
        with self._lock:
            left = list(self.in_flight.values())
        if left:
            now = time.monotonic()
            for j in left:  # sent, never answered: stored as calls without tokens
                call = GeneratorCall(
                    now - j.started,
                    model=getattr(j.generator, "model_label", j.generator.name),
                    ok=False,
                    error=f"abandoned: the run ended after {now - j.started:.1f} s in flight",
                )
                label = f"{j.generator.name}.{'mutate' if j.parent else 'init'}"
                s.store.add_call(call_record(label, call, None, j.temperature))
            s.store.add_event(
                "llm_abandoned",
                {
                    "iteration": s.iteration,
                    "calls": len(left),
                    "seconds_in_flight": [round(now - j.started, 1) for j in left],
                },
            )

    def summary(self) -> dict:
        """What the model contributed, for the stop event and the run summary."""
        champ = self.s.champion.id if self.s.champion else None
        return {
            "calls_started": self.started,
            "programs_raced": self.raced,
            "programs_joined": len(self.joined),
            "unchanged_replies": self.unchanged,
            "champion_by_model": champ is not None and champ in self.joined,
            "champion_descends_from_model": champ is not None and _descends(self.s, champ, set(self.joined)),
        }

    def snapshot(self, activity: str) -> dict:
        """The live view's model line: its speed, calls in flight, and what it contributed so far."""
        return {
            "seconds_per_call": self.seconds_per_call,
            "calls_in_flight": self.calls_in_flight,
            "model_joined": len(self.joined),
            "model_raced": self.raced,
            "activity": activity,
        }

    def to_state(self) -> dict:
        """What a resumed run needs to go on where this one stopped.

        Without it a resumed lane numbers its calls from 0 again: it asks for its first programs
        a second time, repeats the call seeds of the killed run, sizes its width from one call
        as if the model were unmeasured, and its summary forgets what the model already
        contributed. Calls in flight at the save are not replayed (their replies died with the
        process); they stay counted as started.
        """
        return {
            "started": self.started,
            "raced": self.raced,
            "joined": list(self.joined),
            "unchanged": self.unchanged,
            "seconds_per_call": self.seconds_per_call,
        }

    def restore(self, state: dict) -> None:
        self.started = int(state.get("started") or 0)
        self.raced = int(state.get("raced") or 0)
        self.joined = [int(p) for p in state.get("joined") or ()]
        self.unchanged = int(state.get("unchanged") or 0)
        per_call = state.get("seconds_per_call")
        self._saved_per_call = float(per_call) if per_call is not None else None

    # --- shared ---------------------------------------------------------------------------
    @property
    def seconds_per_call(self) -> float | None:
        """The slowest generator's measured speed; before this process measured one, the saved one."""
        measured = [v for g in self.generators if (v := g.seconds_per_call) is not None]
        return max(measured) if measured else self._saved_per_call

    @property
    def calls_in_flight(self) -> int:
        with self._lock:
            return len(self.in_flight)

    # --- in a lane thread -------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        rng = random.Random(job.seed)
        cand: Candidate | None = None
        error: BaseException | None = None
        try:
            if job.parent is None:
                firsts = job.generator.initial(self.s.ctx, 1, job.temperature, rng)
                cand = firsts[0] if firsts else None
            else:
                cand = job.generator.mutate(self.s.ctx, job.parent, job.temperature, rng)
        except Exception as e:  # noqa: BLE001 - reported on the search's thread, one call lost
            error = e
        with self._lock:
            self.in_flight.pop(job.number, None)
            if not self.closed:
                self.arrived.put(Arrival(job, cand, error))


def _same_program(source: str, parent_source: str) -> bool:
    """Equal up to comments, docstrings and formatting (``Program.normalized_hash``)."""
    return Program(source).normalized_hash == Program(parent_source).normalized_hash


def _weakest(s: Search) -> int | None:
    members = [m for i in s.population.islands for m in i.members]
    return min(members, key=lambda m: (m.score, -m.id)).id if members else None


def _descends(s: Search, pid: int, ancestors: set[int]) -> bool:
    """Whether ``pid`` or a program in its lineage is one of ``ancestors`` (tuning keeps lineage)."""
    seen: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in ancestors:
            return True
        if p in seen:
            continue
        seen.add(p)
        todo += list(s.store.program(p).get("parents") or ())
    return False
