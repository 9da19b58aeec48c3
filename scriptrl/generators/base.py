"""What every source of programs implements, and what it hands back.

A generator proposes program *sources*; it never evaluates them. The search owns the
run store, the evaluation and the selection; a generator only sees parents (source,
score, an optional digest of their evaluation) and returns ``Candidate`` objects with
enough provenance to explain later where a program came from. Offline mutators, the
CMA-ES tuner and (later) language-model generators all fit this one protocol.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import gymnasium

from scriptrl.envs import ResolvedEnv
from scriptrl.generators.parent_facts import ParentFacts

#: Values of ``Candidate.change``.
CHANGES = ("init", "structural", "scalar")
#: Temperatures a generator is asked for; outside this range they are clamped.
TEMPERATURE_RANGE = (0.0, 1.5)


def clamp_temperature(t: float) -> float:
    lo, hi = TEMPERATURE_RANGE
    try:
        t = float(t)
    except (TypeError, ValueError):
        return 1.0
    if t != t:  # NaN
        return 1.0
    return min(max(t, lo), hi)


@dataclass
class GeneratorCall:
    """Cost accounting for one generator call (zero tokens and cost for offline generators)."""

    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    model: str | None = None
    ok: bool = True
    error: str | None = None


@dataclass
class Candidate:
    """One proposed program, with where it came from and what changed."""

    source: str
    parents: tuple[int, ...]  # program ids in the run store (filled from ParentInfo.id)
    generator: str  # e.g. "offline.init", "offline.mutate", "offline.crossover", "cma.tune"
    change: str  # "init" | "structural" | "scalar"
    temperature: float
    note: str = ""  # human words: what changed
    call: GeneratorCall | None = None


@dataclass
class ParentInfo:
    """A program already in the run store, as a generator sees it."""

    id: int
    source: str
    score: float
    digest: dict | None = None  # EvalResult.to_dict() summary, when available
    facts: ParentFacts | None = None  # traced worst episodes, lineage, inspirations (for a model)


@dataclass
class GenContext:
    """The environment a generator writes programs for."""

    env: ResolvedEnv
    observation_space: gymnasium.Space
    action_space: gymnasium.Space
    history: list[float] = field(default_factory=list)

    @classmethod
    def for_env(cls, env: ResolvedEnv) -> GenContext:
        """Build the spaces from one ``env.make()``, then close that environment."""
        instance = env.make()
        try:
            return cls(
                env=env, observation_space=instance.observation_space, action_space=instance.action_space
            )
        finally:
            try:
                instance.close()
            except Exception:  # pragma: no cover - a broken close() must not hide the spaces
                pass


@runtime_checkable
class Generator(Protocol):
    """A source of candidate programs. Everything must be deterministic given ``rng``.

    Every member the search uses is declared here; ``GeneratorBase`` gives the defaults of the
    optional ones (a fast generator with no side channel), so the search never probes.
    """

    name: str
    slow: bool  # seconds per program (a language model): the search tunes constants while it writes

    @property
    def local_threads(self) -> int:
        """CPU threads it uses on this machine (an embedded model server); read-only, so a
        generator may compute it."""
        ...

    @property
    def seconds_per_call(self) -> float | None:
        """Measured seconds per model request, for the live view; None for a generator without calls."""
        ...

    @property
    def calls_in_flight(self) -> int:
        """Requests sent and not yet answered."""
        ...

    @property
    def max_in_flight(self) -> int:
        """Requests it can usefully have in flight at once (the model lane's ceiling)."""
        ...

    def initial(self, ctx: GenContext, n: int, temperature: float, rng: random.Random) -> list[Candidate]: ...

    def initial_stream(
        self, ctx: GenContext, n: int, temperature: float, rng: random.Random
    ) -> Iterator[Candidate]:
        """The first programs one at a time, so a slow generator's first ones are evaluated early."""
        ...

    def mutate(
        self, ctx: GenContext, parent: ParentInfo, temperature: float, rng: random.Random
    ) -> Candidate | None: ...

    def crossover(
        self, ctx: GenContext, a: ParentInfo, b: ParentInfo, temperature: float, rng: random.Random
    ) -> Candidate | None: ...

    def drain_calls(self) -> list[tuple[str, GeneratorCall]]:
        """Calls made since the last drain that produced no candidate (they still cost)."""
        ...

    def drain_events(self) -> list[tuple[str, dict]]:
        """Notices for the run's timeline since the last drain (e.g. a fallback to another model)."""
        ...

    def close(self) -> None:
        """Release what the generator holds (an embedded model server); called once at the end."""
        ...


class GeneratorBase:
    """The defaults of ``Generator``'s optional members; a generator subclasses it and writes
    ``name``, ``initial``, ``mutate`` and ``crossover``."""

    name = "generator"
    slow = False

    @property
    def local_threads(self) -> int:
        return 0

    @property
    def seconds_per_call(self) -> float | None:
        return None

    @property
    def calls_in_flight(self) -> int:
        return 0

    @property
    def max_in_flight(self) -> int:
        return 1

    def initial(self, ctx: GenContext, n: int, temperature: float, rng: random.Random) -> list[Candidate]:
        raise NotImplementedError

    def initial_stream(
        self, ctx: GenContext, n: int, temperature: float, rng: random.Random
    ) -> Iterator[Candidate]:
        yield from self.initial(ctx, n, temperature, rng)

    def drain_calls(self) -> list[tuple[str, GeneratorCall]]:
        return []

    def drain_events(self) -> list[tuple[str, dict]]:
        return []

    def close(self) -> None:
        return None
