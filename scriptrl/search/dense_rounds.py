"""The dense lane of tuning: CMA-ES on the dense linear form of a leading program.

What it is for: the structural search finds sparse programs (an argmax whose scores each read
a few readings), and the leader's lane tunes them as they are, with the population pycma gives
their few constants; CMA-ES can never add a missing reading. This lane tunes the program's
dense form instead (``generators/offline/dense.py``: every reading in every linear score) from
the recipe's start (every weight 0.0, a unit step for each; the program gives the shape and the
incumbent to beat, see ``DenseTuning.zero_start``) with the budget the
measured recipe used: a population ``DENSE_POPSIZE_FACTOR`` times pycma's ``4 + 3 ln n``
(56 for 36 weights) and 5 fresh episode seeds per generation shared by the whole generation.

The search gives the lane rounds like the other kinds of round (``EffortSplit``: at least its
floor, the rest by gain per env step), so it gets the budget when its race wins pay for its
larger generations. A campaign goes on until it ends, however the leader changes. Measured on
LunarLander-v3 seed 0 (300 s): switching whenever the best program had another dense shape and
the incumbent was out of the top three split 32 generations into six campaigns (14, 5, 1, 2, 2,
8 generations; holdout -97.3); switching when the incumbent left the population still split
39 into four (18, 6, 5, 10; holdout -102.2): the leader lane's tuning of a dense winner
replaces it in its niche.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scriptrl.generators.offline.dense import MAX_DENSE_CONSTANTS, dense_form, dense_key
from scriptrl.search.cmaes import CmaSettings
from scriptrl.search.population import Member
from scriptrl.search.tuning_campaign import Campaign
from scriptrl.search.tuning_rounds import Tuning

if TYPE_CHECKING:
    from scriptrl.search.loop import Search

#: The dense lane's population over pycma's default for the dimension (the recipe's 56 = 4 x 14).
DENSE_POPSIZE_FACTOR = 4.0
#: Fresh episode seeds per generation, shared by all of it (the recipe's 5).
DENSE_EPISODES = 5


def dense_settings(factor: float = DENSE_POPSIZE_FACTOR, episodes: int = DENSE_EPISODES) -> CmaSettings:
    """The dense lane's CMA-ES: the population follows the dimension (``initial_popsize``)."""
    return CmaSettings(popsize_factor=factor, episodes_per_generation=episodes)


class DenseTuning(Tuning):
    """Campaigns on dense forms of the best programs (see the module docstring)."""

    lane = "dense"
    generator = "cma.dense"
    max_tuned = MAX_DENSE_CONSTANTS
    # The ES mean starts from all-zero weights with a unit step for each (the recipe's start,
    # ``benchmarks/cmaes_lunarlander.py``: x0 = 0, scales 1.0, sigma0 from CmaSettings), not from
    # the leader's weights: started there (LunarLander-v3, 300 s, seeds 0-2: -98.5 / -103.7 /
    # -80.0) its mean stayed at -150..-80 and never made a champion. The program still gives
    # the campaign its dense shape, the incumbent its candidates must beat and its race.
    zero_start = True

    def __init__(self, search: Search, factory: Any = None) -> None:
        self._forms: dict[str, str | None] = {}  # source -> its dense form (parsing costs ms)
        super().__init__(search, factory)

    def _settings(self) -> CmaSettings:
        return dense_settings(self.search.cfg.dense_popsize_factor)

    def tuned_source(self, source: str) -> str | None:
        if source not in self._forms:
            self._forms[source] = dense_form(self.search.ctx, source)
        return self._forms[source]

    def _target(self) -> Member | None:
        """The best of the top programs that has a dense form, fewest fruitless campaigns first."""
        store = self.search.store
        return self.search.population.next_to_tune(
            self.fruitless, accept=lambda m: self.tuned_source(store.program(m.id)["source"]) is not None
        )

    def _campaign(self) -> Campaign | None:
        """The running campaign while it lasts, even when no top program has a dense form any
        more (a round the search gives the lane must run, or the lane's floor would take rounds
        from tuning and give them back to structure); a new one only once it has ended."""
        camp = self.campaign
        if camp is not None and camp.stopped is None:
            target = self._target()
            if target is not None:
                self._continues(camp, target)  # a better program of its shape becomes the bar
            return camp
        return super()._campaign()

    def available(self) -> bool:
        """Whether a dense round could run now (the search offers the kind only then)."""
        camp = self.campaign
        return (camp is not None and camp.stopped is None) or self._target() is not None

    def _continues(self, camp: Campaign, target: Member) -> bool:
        """A campaign goes on until it ends (budget spent or restarts exhausted), however the
        leader changes: CMA-ES needs tens of generations in one run (the recipe passed 200
        after about 20 generations of 56, 1.2-2.4 M steps). A better program of the same dense shape (the
        leader lane's tuning of the campaign's own output, say) becomes the one to beat."""
        inc = self.search.population.member(camp.state.incumbent)
        if target.id != camp.state.incumbent and (inc is None or target.score > inc.score):
            form = self.tuned_source(self.search.store.program(target.id)["source"])
            if form is not None and dense_key(form) == dense_key(camp.source):
                camp.state.incumbent = target.id
        return True

    def _what(self, program: int) -> str:
        return f"the dense form of program {program}"
