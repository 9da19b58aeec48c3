"""A tuning campaign: CMA-ES on one program's constants, continued across the search's rounds.

The ES (``search/cmaes.py``: ask/tell, IPOP restarts, a budget from ``CmaSettings.budget_for``)
is driven here a few generations per tuning round. Every generation's population is scored on
that generation's own fresh training-stream seeds, shared by the whole generation (common random
numbers), so no constant is fitted to a fixed set of episodes. After a round the ES mean (the
point the noisy-ES literature trusts) and the best candidate told become ordinary candidates that
race the campaign's incumbent (first the program tuned, then whichever of its tuned children last
won); winners are stored like any program (parent: the incumbent, change "scalar").

Each generation's scores are stored in a ``tune`` event with its env steps (summed by SQL for the
budget). A resumed run rebuilds the ES and replays those scores through ``tell``: the ES is
deterministic given its seed and the told scores, so it continues exactly where it was.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from scriptrl.generators.base import GenContext
from scriptrl.generators.tuning import MAX_TUNED, ConstantTuner, extract_constants, with_constants
from scriptrl.search.cmaes import ConstantSearch


@dataclass
class CampaignState:
    number: int
    program: int  # the program whose constants are searched
    incumbent: int  # what its candidates must beat
    told: int = 0  # generations scored and told
    wins: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> CampaignState:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def to_dict(self) -> dict:
        return asdict(self)


#: Added to a campaign's number for the ES seed of a lane other than the leader's, so two lanes'
#: campaigns with the same number draw different samples.
LANE_SEED_OFFSET = 100_003

#: ``score(sources, generation) -> scores``: the generation's sources on its fresh seeds.
Scorer = Callable[[list[str], int], list[float]]


class Campaign:
    def __init__(
        self,
        state: CampaignState,
        source: str,
        ctx: GenContext,
        seed: int,
        settings: Any,
        factory: Any = None,
        lane: str = "",
        max_tuned: int = MAX_TUNED,
        zero_start: bool = False,
    ) -> None:
        self.state, self.source, self.settings = state, source, settings
        values = [float(v) for v in extract_constants(source)]
        self.values = values
        rng = random.Random(f"{seed}:campaign:{lane}{state.number}")
        n = len(values)
        self.chosen = sorted(rng.sample(range(n), max_tuned)) if n > max_tuned else list(range(n))
        floors = _floors(ctx, source, n)
        x0 = [values[i] for i in self.chosen]
        if zero_start:  # the recipe's start: every weight 0.0, one unit step each (see DenseTuning)
            x0, scales = [0.0] * len(self.chosen), [1.0] * len(self.chosen)
        else:  # relative to each constant's size, its floor for small ones
            scales = [
                max(abs(x0[k]), abs(floors[i]) if floors[i] else 0.1, 1e-3) for k, i in enumerate(self.chosen)
            ]
        self.es = None
        if self.chosen:
            es_class = factory or ConstantSearch
            number = state.number + (LANE_SEED_OFFSET if lane else 0)
            self.es = es_class(x0, scales, seed=hash_seed(seed, number), settings=settings)

    @property
    def n_constants(self) -> int:
        return len(self.chosen)

    @property
    def stopped(self) -> str | None:
        if self.es is None:
            return "no tunable constants"
        return self.es.stopped

    def program_for(self, x: list[float]) -> str:
        values = list(self.values)
        for k, i in enumerate(self.chosen):
            values[i] = x[k]
        return with_constants(self.source, values)

    def generation(self, score: Scorer) -> list[float]:
        """Ask, score on this generation's seeds, tell; returns the scores."""
        assert self.es is not None
        xs = self.es.ask()
        scores = score([self.program_for(x) for x in xs], self.state.told)
        self.es.tell(xs, scores)
        self.state.told += 1
        return scores

    def replay(self, stored: list[list[float]]) -> None:
        """Tell the ES the scores a previous process stored, generation by generation."""
        assert self.es is not None
        for scores in stored:
            xs = self.es.ask()
            self.es.tell(xs, scores)

    def candidates(self) -> list[str]:
        """The ES mean and the best candidate told, as programs (the mean first)."""
        if self.es is None:
            return []
        out = [self.program_for(self.es.best_mean)]
        best_x, best_score = self.es.best
        if best_score > float("-inf"):
            out.append(self.program_for(best_x))
        return list(dict.fromkeys(s for s in out if s != self.source))


def hash_seed(seed: int, number: int) -> int:
    return (int(seed) * 1_000_003 + number * 7_919 + 17) % (2**31 - 1)


def _floors(ctx: GenContext, source: str, n: int) -> list[float]:
    """Per-constant step floors from the environment (a component's range for thresholds on it)."""
    try:
        floors = ConstantTuner().scales(ctx, source)
    except Exception:  # an exotic environment only loses the better step sizes
        return [0.0] * n
    return floors if len(floors) == n else [0.0] * n
