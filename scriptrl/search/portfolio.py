"""Which generator and which operator makes the next child: a bandit over (generator, op).

Arms are credited when their child beats its parent on the full dev split. UCB1 keeps
trying every arm while favouring the ones that pay, measured as improvements per unit of
cost: a child costs one unit (about what evaluating it costs) plus its generation time and
money, so a millisecond offline mutation and a five-second or paid LLM call compete fairly
and the model is used where it earns its price.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator, Mapping

from scriptrl.generators.base import Candidate, GenContext, Generator, GeneratorCall

#: What one unit of cost is worth: a child's evaluation takes on the order of a second.
SECONDS_PER_UNIT = 2.0
USD_PER_UNIT = 0.001


def cost_units(call: GeneratorCall | None) -> float:
    if call is None:
        return 1.0
    return 1.0 + max(0.0, call.latency_s) / SECONDS_PER_UNIT + max(0.0, call.cost_usd) / USD_PER_UNIT


class Portfolio:
    def __init__(self, generators: list[Generator], crossover_rate: float = 0.25) -> None:
        if not generators:
            raise ValueError("a portfolio needs at least one generator")
        self.generators: dict[str, Generator] = {g.name: g for g in generators}
        self.crossover_rate = crossover_rate
        self.tries: Counter[str] = Counter()
        self.wins: Counter[str] = Counter()
        self.cost: Counter[str] = Counter()  # cost units spent per arm, failed calls included
        self._filler: Generator | None = None

    def without(self, removed: list[Generator]) -> Portfolio:
        """This portfolio less ``removed`` (the slow generators the model lane runs); the filler
        offline mutator when nothing is left, so the search always has a fast generator."""
        names = {g.name for g in removed}
        kept = [g for g in self.generators.values() if g.name not in names] or [self.filler]
        return Portfolio(kept, self.crossover_rate)

    def arms(self, can_cross: bool) -> list[tuple[str, str]]:
        ops = ("mutate", "crossover") if can_cross else ("mutate",)
        return [(name, op) for name in self.generators for op in ops]

    def choose(self, rng: random.Random, can_cross: bool) -> tuple[Generator, str]:
        arms = self.arms(can_cross)
        if len(self.generators) == 1:  # one generator: only the operator mix matters
            name = next(iter(self.generators))
            op = "crossover" if can_cross and rng.random() < self.crossover_rate else "mutate"
            return self.generators[name], op
        total = sum(self.tries[f"{n}.{o}"] for n, o in arms) + 1
        best, best_value = arms[0], float("-inf")
        for n, o in arms:
            key = f"{n}.{o}"
            t = self.tries[key]
            if t == 0:
                value = float("inf")
            else:
                spent = max(self.cost[key], float(t))  # state saved before costs were kept has none
                value = self.wins[key] / spent + math.sqrt(2 * math.log(total) / t) * t / spent
            value += rng.random() * 1e-9  # deterministic tie-break
            if value > best_value:
                best, best_value = (n, o), value
        return self.generators[best[0]], best[1]

    @property
    def slow(self) -> bool:
        """Whether a generator takes seconds per program (a language model): the search then
        tunes constants while it writes instead of waiting for whole batches."""
        return any(g.slow for g in self.generators.values())

    @property
    def local_threads(self) -> int:
        """CPU threads a model inside this process uses (the embedded llama.cpp server)."""
        return sum(g.local_threads for g in self.generators.values())

    @property
    def seconds_per_call(self) -> float | None:
        """The slowest generator's measured seconds per request (None before any was measured)."""
        measured = [v for g in self.generators.values() if (v := g.seconds_per_call) is not None]
        return max(measured) if measured else None

    @property
    def calls_in_flight(self) -> int:
        return sum(g.calls_in_flight for g in self.generators.values())

    @property
    def filler(self) -> Generator:
        """The fast generator that writes what a slow one has no time for in a round: the
        portfolio's own fast one (``auto``), else an offline mutator kept for the purpose."""
        fast = next((g for g in self.generators.values() if not g.slow), None)
        if fast is not None:
            return fast
        if self._filler is None:
            from scriptrl.generators.offline import OfflineMutator

            self._filler = OfflineMutator()
        return self._filler

    def _shares(self, n: int) -> list[tuple[Generator, int]]:
        gens = list(self.generators.values())
        return [(g, n // len(gens) + (1 if i < n % len(gens) else 0)) for i, g in enumerate(gens)]

    def initial(self, ctx: GenContext, n: int, temperature: float, rng: random.Random) -> list[Candidate]:
        out: list[Candidate] = []
        for g, share in self._shares(n):
            if share:
                out += g.initial(ctx, share, temperature, rng)
        return out

    def initial_stream(
        self, ctx: GenContext, n: int, temperature: float, rng: random.Random
    ) -> Iterator[Candidate]:
        """The first programs one at a time, fast generators first, so there is something to
        evaluate and tune while a slow one writes the rest."""
        for g, share in sorted(self._shares(n), key=lambda gs: gs[0].slow):
            if share:
                yield from g.initial_stream(ctx, share, temperature, rng)

    def credit(self, arm: str, success: bool, call: GeneratorCall | None = None) -> None:
        self.tries[arm] += 1
        self.cost[arm] += cost_units(call)  # type: ignore[assignment]  # typeshed's Counter counts ints only
        if success:
            self.wins[arm] += 1

    def charge(self, arm: str, call: GeneratorCall) -> None:
        """A call that yielded no child still cost its time and money (no evaluation); the arm pays."""
        self.cost[arm] += cost_units(call) - 1.0  # type: ignore[assignment]  # a Counter of float costs

    def to_state(self) -> dict:
        return {"tries": dict(self.tries), "wins": dict(self.wins), "cost": dict(self.cost)}

    def restore(self, state: dict) -> None:
        self.tries = Counter(state.get("tries", {}))
        self.wins = Counter(state.get("wins", {}))
        self.cost = Counter(state.get("cost", {}))


class EffortSplit:
    """How a round is spent: structural changes (children of the generators), constant tuning
    or the dense lane of tuning (``search/dense_rounds.py``), following where the improvements
    came from: the race winners' mean paired gains (in return units, so every kind is measured
    alike) per env step.

    Each kind gets at least ``floor`` of the rounds (the other one may start paying later); the
    rest go to the kind with more gain per step, each with one average round's gain and steps of
    optimism so a kind that has not paid yet is not written off after one try.

    With a ``memory`` (in rounds), gains and steps are weighed by recency: every round multiplies
    what was credited before by ``2 ** (-1 / memory)``, so a kind that paid early (structure, while
    the first programs are poor) does not keep the budget once another kind is the one moving the
    leader (a dense campaign that needed tens of generations to get there). The floor counts
    every round alike.
    """

    KINDS = ("structure", "tuning", "dense")  # dense: the dense lane of tuning (search/dense_rounds.py)

    def __init__(self, floor: float = 0.2, memory: float | None = None) -> None:
        self.floor = floor
        self.memory = memory
        self.rounds: Counter[str] = Counter()
        self.wins: Counter[str] = Counter()  # summed gains
        self.steps: Counter[str] = Counter()
        # the recency-weighted gains and steps (the plain sums without a memory)
        self.recent_wins: dict[str, float] = {}
        self.recent_steps: dict[str, float] = {}

    def choose(self, allowed: tuple[str, ...] = KINDS) -> str:
        if len(allowed) == 1:
            return allowed[0]
        total = sum(self.rounds[k] for k in allowed) + 1
        for k in allowed:
            if self.rounds[k] < self.floor * total:
                return k
        n = max(1, sum(self.rounds.values()))
        steps0 = max(1.0, sum(self.steps.values()) / n)
        gain0 = sum(self.wins.values()) / n
        wins: Mapping[str, float] = self.wins if self.memory is None else self.recent_wins
        steps: Mapping[str, float] = self.steps if self.memory is None else self.recent_steps
        return max(
            allowed,
            key=lambda k: ((wins.get(k, 0.0) + gain0) / (steps.get(k, 0.0) + steps0), -self.KINDS.index(k)),
        )

    def credit(self, kind: str, gain: float, steps: int) -> None:
        self.rounds[kind] += 1
        self.wins[kind] += gain  # type: ignore[assignment]  # typeshed's Counter counts ints only
        self.steps[kind] += steps
        if self.memory is not None:
            keep = 2.0 ** (-1.0 / self.memory)
            for d in (self.recent_wins, self.recent_steps):
                for k in d:
                    d[k] *= keep
            self.recent_wins[kind] = self.recent_wins.get(kind, 0.0) + gain
            self.recent_steps[kind] = self.recent_steps.get(kind, 0.0) + steps

    def to_state(self) -> dict:
        out: dict[str, dict] = {"rounds": dict(self.rounds), "wins": dict(self.wins)}
        out["steps"] = dict(self.steps)
        if self.memory is not None:
            out["recent_wins"], out["recent_steps"] = dict(self.recent_wins), dict(self.recent_steps)
        return out

    def restore(self, state: dict) -> None:
        self.rounds = Counter(state.get("rounds", {}))
        self.wins = Counter(state.get("wins", {}))
        self.steps = Counter(state.get("steps", {}))
        self.recent_wins = dict(state.get("recent_wins", {}))
        self.recent_steps = dict(state.get("recent_steps", {}))
