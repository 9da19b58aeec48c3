"""Tuning rounds of the search: which program's constants are tuned, and what the ES's output races.

One campaign at a time (``search/tuning_campaign.py``), on the best program whose campaigns have
found nothing fewest times (``Population.next_to_tune``). It goes on across rounds while that
niche (the program's structure) is still the one to tune; a campaign that ends (budget spent or
restarts exhausted) without a win counts against its program, so the next one goes to a runner-up.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

from scriptrl.generators.base import Candidate
from scriptrl.generators.tuning import MAX_TUNED
from scriptrl.program import Program
from scriptrl.search.cmaes import CmaSettings
from scriptrl.search.population import Member, structure_signature
from scriptrl.search.tuning_campaign import Campaign, CampaignState

if TYPE_CHECKING:
    from scriptrl.search.loop import Search


class Tuning:
    """The leader's lane: campaigns on the best programs as they are."""

    lane = "leader"
    generator = "cma.tune"
    max_tuned = MAX_TUNED
    zero_start = False  # the ES starts from the program's own constants (see Campaign)

    def __init__(self, search: Search, factory: Any = None) -> None:
        self.search = search
        self.factory = factory  # a ConstantSearch class (tests inject one); default: search/cmaes.py
        self.settings = self._settings()
        self.campaign: Campaign | None = None
        self.count = 0
        self.fruitless: Counter[int] = Counter()
        self.log: dict[tuple[int, int], list[float]] = {}  # (campaign, generation) -> stored scores

    def _settings(self) -> CmaSettings:
        return CmaSettings(popsize_factor=self.search.cfg.tune_popsize_factor)

    def round(self, temperature: float, generations: int, why: str) -> int | None:
        """A few generations of the current campaign, then its candidates race the incumbent;
        the number of race wins, or None when no program has constants left to tune."""
        camp = self._campaign()
        if camp is None:
            return None
        for _ in range(generations):
            if camp.stopped is not None:
                break
            camp.generation(lambda sources, gen: self._score(camp, sources, gen, why))
        wins = self._race(camp, temperature)
        if camp.stopped is not None:
            self.search.store.add_event(
                "tune_end",
                {
                    "iteration": self.search.iteration,
                    "campaign": camp.state.number,
                    "program": camp.state.program,
                    "why": camp.stopped,
                    "wins": camp.state.wins,
                    "generations": camp.state.told,
                    **self._tag(),
                },
            )
            if camp.state.wins == 0:
                self.fruitless[camp.state.program] += 1
            self.campaign = None
        return wins

    def _campaign(self) -> Campaign | None:
        for _ in range(4):
            target = self._target()
            if target is None:
                return None
            camp = self.campaign
            if camp is not None and camp.stopped is None and self._continues(camp, target):
                return camp
            self.count += 1
            state = CampaignState(self.count, target.id, target.id)
            camp = self._build(state)
            if camp.stopped is None:
                self.campaign = camp
                return camp
            self.fruitless[target.id] += 1000  # nothing to tune in it
        return None

    def _target(self) -> Member | None:
        """The program the next campaign tunes."""
        return self.search.population.next_to_tune(self.fruitless)

    def _continues(self, camp: Campaign, target: Member) -> bool:
        """The campaign goes on for its incumbent and for any program of its structure, signs of
        the constants apart: its own outputs move constants through zero (``-0.3`` is ``-``
        applied to ``0.3``), and a new campaign on such an output would start over with fresh
        step sizes and covariance, so the ES would never run long enough to adapt (measured on
        the zero-start feedback law: 14 campaigns in 600 s, most on the previous one's outputs)."""
        if target.id == camp.state.incumbent:
            return True
        source = self.search.store.program(target.id)["source"]
        return structure_signature(camp.source, signed=False) == structure_signature(source, signed=False)

    def tuned_source(self, source: str) -> str | None:
        """The program a campaign on ``source`` searches the constants of: the program itself."""
        return source

    def _build(self, state: CampaignState) -> Campaign:
        s = self.search
        source = self.tuned_source(s.store.program(state.program)["source"])
        return Campaign(
            state,
            source or "",
            s.ctx,
            s.cfg.seed,
            self.settings,
            self.factory,
            self._tag().get("lane", ""),  # the leader's lane draws as before lanes existed
            self.max_tuned,
            self.zero_start,
        )

    def _score(self, camp: Campaign, sources: list[str], generation: int, why: str) -> list[float]:
        """A generation on its own fresh seeds, shared by all of it; stored scores after a crash."""
        s = self.search
        seeds = s.stream.draw(camp.settings.episodes_per_generation)
        key = (camp.state.number, generation)
        if key in self.log:
            return self.log[key]
        scores, steps = s.bank.score(sources, seeds)
        s.store.add_event(
            "tune",
            {
                "iteration": s.iteration,
                "campaign": camp.state.number,
                "generation": generation,
                "program": camp.state.program,
                "evaluations": len(sources),
                "env_steps": steps,
                "seeds": [seeds[0], len(seeds)],
                "scores": scores,
                "why": why,
                **self._tag(),
            },
        )
        self.log[key] = scores
        return scores

    def _tag(self) -> dict:
        """What marks this lane's events (the leader's lane writes none: older runs read alike)."""
        return {} if self.lane == Tuning.lane else {"lane": self.lane}

    def _race(self, camp: Campaign, temperature: float) -> int:
        s = self.search
        inc = camp.state.incumbent
        note = (
            f"CMA-ES on {camp.n_constants} constants of {self._what(camp.state.program)}, "
            f"generation {camp.state.told}"
        )
        cands = [
            Candidate(src, (inc,), self.generator, "scalar", temperature, note=note)
            for src in camp.candidates()
        ]
        if not cands:
            return 0
        wins = s._consider(cands, dict.fromkeys(range(len(cands)), inc), s.stream.draw(s.rule.episodes))
        if wins:
            camp.state.wins += wins
            placed = [
                m
                for c in cands
                if (pid := s.store.find_by_norm_hash(Program(c.source).normalized_hash)) is not None
                and (m := s.population.member(pid)) is not None
            ]
            if placed:
                camp.state.incumbent = max(placed, key=lambda m: m.score).id
        return wins

    def _what(self, program: int) -> str:
        return f"program {program}"

    def to_state(self) -> dict:
        return {
            "count": self.count,
            "fruitless": {str(k): v for k, v in self.fruitless.items()},
            "campaign": self.campaign.state.to_dict() if self.campaign else None,
        }

    def restore(self, state: dict) -> None:
        self.count = int(state.get("count") or 0)
        self.fruitless = Counter({int(k): v for k, v in (state.get("fruitless") or {}).items()})
        if self.lane == Tuning.lane:
            self.search.fruitless = self.fruitless
        for e in self.search.store.events("tune"):
            d = e["data"]
            if "campaign" in d and d.get("lane", Tuning.lane) == self.lane:
                self.log[(d["campaign"], d["generation"])] = [
                    -math.inf if v is None else v for v in d["scores"]
                ]
        if state.get("campaign"):
            camp = self._build(CampaignState.from_dict(state["campaign"]))
            camp.replay([self.log[(camp.state.number, g)] for g in range(camp.state.told)])
            self.campaign = camp
