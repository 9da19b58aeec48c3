"""STAND-IN for ``scriptrl/search/cmaes.py`` (written by another helper): the integrator deletes
this file once ``cmaes.py`` is merged; ``search/tuning_campaign.py`` imports that module first.

Minimal ask/tell CMA-ES with the same API (``CmaSettings``, ``ConstantSearch``) so the search
runs and its tests pass on this branch: pycma on the constants with per-coordinate standard
deviations ``sigma0 * scales``, IPOP restarts (doubled population, from the best point) when
pycma stops, and a budget of program evaluations. Deterministic: pycma is seeded from
``(seed, restart)``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CmaSettings:
    popsize: int | None = None
    popsize_factor: float = 1.0
    episodes_per_generation: int = 5
    max_restarts: int = 4
    sigma0: float = 0.3
    stall_generations: int | None = None

    def initial_popsize(self, n_constants: int) -> int:
        if self.popsize is not None:
            return self.popsize
        return max(2, round((4 + int(3 * math.log(max(2, n_constants)))) * self.popsize_factor))

    def budget_for(self, n_constants: int) -> int:
        return max(100 * n_constants, 30 * self.initial_popsize(n_constants))


class ConstantSearch:
    def __init__(self, x0, scales, *, seed: int, settings: CmaSettings = CmaSettings()) -> None:
        self.n, self.seed, self.settings = len(x0), int(seed), settings
        self._pad = 1 if self.n == 1 else 0
        self._scales = [float(s) for s in scales] + [1.0] * self._pad
        self.max_evaluations = settings.budget_for(self.n)
        self.generations = self.evaluations = self.restarts = 0
        self._best_x = [float(v) for v in x0] + [0.0] * self._pad
        self._best_score = -math.inf
        self._stopped: str | None = None
        self._pending: list | None = None
        self._start(self._best_x)

    def _start(self, x: list[float]) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import cma

            opts = {"seed": 1 + (self.seed * 7919 + self.restarts) % (2**31 - 2), "verbose": -9,
                    "CMA_stds": self._scales, "popsize": self.settings.initial_popsize(self.n) * 2**self.restarts,
                    "tolflatfitness": 3}  # fmt: skip
            self._es = cma.CMAEvolutionStrategy(list(x), self.settings.sigma0, opts)

    @property
    def best(self) -> tuple[list[float], float]:
        return self._best_x[: self.n], self._best_score

    @property
    def best_mean(self) -> list[float]:
        return [float(v) for v in self._es.result.xfavorite[: self.n]]

    @property
    def stopped(self) -> str | None:
        return self._stopped

    def state(self) -> dict:
        return {"generations": self.generations, "evaluations": self.evaluations, "restarts": self.restarts,
                "stopped": self._stopped}  # fmt: skip

    def ask(self) -> list[list[float]]:
        if self._pending is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._pending = [np.asarray(z, dtype=float) for z in self._es.ask()]
        room = self.max_evaluations - self.evaluations
        return [[float(v) for v in z[: self.n]] for z in self._pending[:room]]

    def tell(self, xs: list[list[float]], scores: list[float]) -> None:
        pending, self._pending = self._pending or [], None
        self.evaluations += len(xs)
        self.generations += 1
        finite = [s for s in scores if math.isfinite(s)]
        floor = min(finite, default=0.0) - 1e6
        for z, s in zip(pending, scores, strict=False):
            if math.isfinite(s) and s > self._best_score:
                self._best_score, self._best_x = float(s), [float(v) for v in z]
        if len(xs) == len(pending):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._es.tell(pending, [-(s if math.isfinite(s) else floor) for s in scores])
        if self.evaluations >= self.max_evaluations:
            self._stopped = "budget"
        elif self._es.stop():
            if self.restarts >= self.settings.max_restarts:
                self._stopped = "restarts exhausted"
            else:
                self.restarts += 1
                self._start(self._best_x)
