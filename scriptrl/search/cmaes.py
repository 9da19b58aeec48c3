"""CMA-ES over one program's numeric constants, as an ask/tell search the caller drives.

The caller owns evaluation: it asks for a generation of constant vectors, writes each into the
program (``generators.tuning.with_constants``), scores all of them on the *same* fresh episodes
(common random numbers; ``SeedSplits().train``) and tells the scores back. Constants fitted to a
few fixed episodes overfit (``../shared/BENCHMARKS.md``: dev 200, holdout −84 on LunarLander);
fresh episodes per generation with a population the dimension calls for do not.

Choices, and why:

* Search space. The ES works on the constants themselves with per-coordinate step sizes
  ``scales`` (pycma's ``CMA_stds``): constant i starts with standard deviation
  ``sigma0 * scales[i]``. ``step_sizes`` gives tuning.py's range-aware rule
  (``max(|v|, floor)``) for callers that only have floors.
* Population: ``4 + floor(3 ln n)`` (pycma's default, 14 for 36 constants) times
  ``popsize_factor``; each IPOP restart doubles it. Noisy returns favour larger populations
  (the LunarLander recipe used 56 = 4 x 14): ask for it with ``popsize_factor=4``.
* Restarts (IPOP) when a run stalls: pycma's own stop conditions (flat fitness, tolfun,
  tolstagnation, ...), every coordinate's standard deviation below ``min_sigma`` of its scale
  (4 significant digits are written back, so finer steps only re-evaluate the same program), or
  no new best generation score for ``stall_generations`` generations. A restart starts from the
  best candidate so far (not x0): budgets are small, and the progress made is worth keeping; the
  new run's doubled population and fresh ``sigma0`` re-explore around that point, so a merely
  lucky point is left at the first mean update.
* Scores: higher is better; NaN, ±inf or a failed program rank below every finite score of the
  generation (the ES is rank-based, so only the order matters). A run with no finite score is
  flat and ends by pycma's tolfun / flat-fitness rules, which trigger a restart; a run
  that never saw a finite score is followed by one with twice its ``sigma0``, so a start inside
  a failing region widens until it finds working programs. (+inf also counts as a failure.)
* Integer constants: the caller rounds when it writes the program and tells back the vectors
  exactly as asked. Rounding makes the returns locally flat; pycma increases sigma on flat
  fitness and a run that stays flat is restarted, so the search does not get stuck. Pass
  ``integers`` to keep those coordinates' standard deviation at least 0.3 (so rounded samples
  keep differing); pycma's own ``integer_variables`` is not used because it draws from numpy's
  global random state, which would break determinism.
* Determinism: every random number comes from a private generator seeded by
  ``(seed, restart)``, never numpy's global state, so the same seed and the same told scores
  give the same asks. A resumed run replays its stored scores through ``tell`` to get back here.
* Which point to confirm. Under noisy fresh episodes ``best`` (the best candidate told) is
  biased upward: it is the maximum of many noisy scores. ``best_mean`` (the distribution mean,
  pycma's ``xfavorite``) is what the noisy CMA-ES literature reports and is the better estimate
  of a good program. Confirm ``best_mean`` on fresh episodes; when the budget allows, confirm
  ``best`` on the same episodes too and keep whichever scores higher there.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

#: Standard deviation kept on integer-valued coordinates (rounding step 1).
INTEGER_MIN_STD = 0.3


@dataclass(frozen=True)
class CmaSettings:
    """How a constant search runs; the defaults follow pycma's and the measured recipe."""

    popsize: int | None = None  # None: (4 + floor(3 ln n)) * popsize_factor
    popsize_factor: float = 1.0
    episodes_per_generation: int = 5  # fresh training-stream seeds per generation, shared by all
    max_restarts: int = 4  # IPOP: each restart doubles the population
    sigma0: float = 0.3  # in units of the per-constant scales
    stall_generations: int | None = None  # None: 10 + ceil(30 n / popsize), see stall_for
    min_sigma: float = 1e-4  # restart when every std / scale is below this

    def __post_init__(self) -> None:
        from scriptrl.errors import UserError

        if self.popsize is not None and self.popsize < 2:
            raise UserError(f"CMA-ES popsize must be at least 2 (got {self.popsize})")
        if not self.popsize_factor > 0:
            raise UserError(f"CMA-ES popsize_factor must be positive (got {self.popsize_factor})")
        if self.episodes_per_generation < 1:
            raise UserError("CMA-ES needs at least 1 episode per generation")
        if self.max_restarts < 0:
            raise UserError(f"CMA-ES max_restarts cannot be negative (got {self.max_restarts})")
        if not self.sigma0 > 0:
            raise UserError(f"CMA-ES sigma0 must be positive (got {self.sigma0})")
        if self.stall_generations is not None and self.stall_generations < 1:
            raise UserError(f"CMA-ES stall_generations must be at least 1 (got {self.stall_generations})")

    def initial_popsize(self, n_constants: int) -> int:
        """Population of the first run (restart k runs ``2**k`` times as many)."""
        if self.popsize is not None:
            return self.popsize
        n = max(2, n_constants)  # pycma works in at least 2 dimensions
        return max(2, round((4 + int(3 * math.log(n))) * self.popsize_factor))

    def stall_for(self, n_constants: int, popsize: int) -> int:
        """Generations without a new best generation score before a restart.

        The ES adapts its step size over roughly ``n / popsize`` generations (its evolution
        path's horizon), so a run is given ten plus thirty such horizons: long enough that
        noisy scores do not end a run that is still moving, short enough to restart a stuck one.
        """
        if self.stall_generations is not None:
            return self.stall_generations
        return 10 + math.ceil(30 * max(2, n_constants) / popsize)

    def budget_for(self, n_constants: int) -> int:
        """Program evaluations a full run deserves: 100 per constant, and at least 30
        generations of the first population. (LunarLander's 36 constants passed 200 after about
        1,150 evaluations of 5 episodes and reached holdout 263–277 after about 3,200.)"""
        return max(100 * n_constants, 30 * self.initial_popsize(n_constants))


def step_sizes(
    x0: Sequence[float], floors: Sequence[float] | None = None, default_floor: float = 0.1
) -> list[float]:
    """tuning.py's range-aware steps: ``max(|v|, floor)`` per constant, so ordinary constants
    move relative to their size and zeros by their floor (e.g. ``ConstantTuner.scales``)."""
    out = []
    for i, v in enumerate(x0):
        f = floors[i] if floors is not None else default_floor
        f = abs(float(f)) if f is not None and math.isfinite(float(f)) and f != 0 else default_floor
        out.append(max(abs(float(v)), f))
    return out


@dataclass(frozen=True)
class GenerationRecord:
    """One told generation, for logs, benchmarks and the run store."""

    generation: int
    restart: int
    popsize: int
    evaluations: int  # total after this generation
    sigma: float  # the run's step size (multiplies scales and the covariance)
    best: float  # best finite score of this generation (-inf when none)
    median: float  # median of its finite scores (-inf when none)
    best_so_far: float
    failed: int  # non-finite scores in this generation


def _json_record(r: GenerationRecord) -> dict:
    """A record with non-finite scores as None: strict JSON has no infinities."""
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in asdict(r).items()}


def _as_scores(scores: Sequence[float | None]) -> list[float]:
    """Told scores as floats; anything that is not a finite number (None, NaN, ±inf) is NaN."""
    out = []
    for s in scores:
        try:
            v = float(s)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            v = math.nan
        out.append(v if math.isfinite(v) else math.nan)
    return out


def _fitness(vals: list[float]) -> list[float]:
    """Minimisation values for pycma: ``-score``; a NaN score ranks below every finite one."""
    finite = [-s for s in vals if math.isfinite(s)]
    if not finite:
        return [0.0] * len(vals)
    worst = max(finite) + 1.0 + (max(finite) - min(finite))
    return [-s if math.isfinite(s) else worst for s in vals]


class ConstantSearch:
    """Ask/tell CMA-ES (with IPOP restarts) on one program's constants; the caller evaluates."""

    def __init__(
        self,
        x0: Sequence[float],
        scales: Sequence[float],
        *,
        seed: int,
        settings: CmaSettings = CmaSettings(),
        max_evaluations: int | None = None,
        integers: Sequence[bool] | None = None,
    ) -> None:
        if len(x0) == 0:
            raise ValueError("there are no constants to search")
        if len(scales) != len(x0) or (integers is not None and len(integers) != len(x0)):
            raise ValueError(f"x0 has {len(x0)} constants but scales/integers do not match it")
        if not all(math.isfinite(float(v)) for v in x0):
            raise ValueError("every starting constant must be finite")
        if not all(math.isfinite(float(s)) and float(s) > 0 for s in scales):
            raise ValueError("every scale must be finite and positive (see step_sizes)")
        self.n = len(x0)
        self.seed = int(seed)
        self.settings = settings
        self.max_evaluations = (
            settings.budget_for(self.n) if max_evaluations is None else int(max_evaluations)
        )
        self._pad = 1 if self.n == 1 else 0  # pycma needs two dimensions: a lone constant gets a dummy
        self._x0 = np.array([float(v) for v in x0] + [0.0] * self._pad)
        self._scales = np.array([float(s) for s in scales] + [1.0] * self._pad)
        ints = list(integers) if integers is not None else [False] * self.n
        self._integers = np.array([bool(b) for b in ints] + [False] * self._pad)
        self.restarts = 0
        self.generations = 0
        self.evaluations = 0
        self.history: list[GenerationRecord] = []
        self.restart_reasons: list[str] = []
        self._best_x = self._x0.copy()
        self._best_score = -math.inf
        self._stopped: str | None = None
        self._pending: list[np.ndarray] | None = None
        self._start_run(self._x0, settings.sigma0)

    # -- public state -------------------------------------------------------------------------

    @property
    def popsize(self) -> int:
        return self.settings.initial_popsize(self.n) * 2**self.restarts

    @property
    def best(self) -> tuple[list[float], float]:
        """The best candidate told so far and its (upward-biased) score; x0 and -inf before any."""
        return self._out(self._best_x), self._best_score

    @property
    def best_mean(self) -> list[float]:
        """The current distribution mean (pycma's ``xfavorite``): the point to confirm."""
        return self._out(np.asarray(self._es.result.xfavorite, dtype=float))

    @property
    def sigma(self) -> float:
        return float(self._es.sigma)

    @property
    def stopped(self) -> str | None:
        """``"budget"`` or ``"restarts exhausted (<last reason>)"`` once it has ended, else None."""
        return self._stopped

    def state(self) -> dict:
        """A JSON-able summary for the run store (resuming replays scores instead)."""
        x, score = self.best
        return {
            "n_constants": self.n,
            "seed": self.seed,
            "settings": asdict(self.settings),
            "max_evaluations": self.max_evaluations,
            "restarts": self.restarts,
            "restart_reasons": list(self.restart_reasons),
            "generations": self.generations,
            "evaluations": self.evaluations,
            "popsize": self.popsize,
            "sigma": self.sigma,
            "best": x,
            "best_score": score if math.isfinite(score) else None,
            "best_mean": self.best_mean,
            "stopped": self._stopped,
            "history": [_json_record(r) for r in self.history[-50:]],
        }

    # -- ask / tell ---------------------------------------------------------------------------

    def ask(self) -> list[list[float]]:
        """One generation of candidate vectors; fewer than ``popsize`` only when the budget ends.
        Asking again before ``tell`` returns the same vectors."""
        if self._stopped is not None:
            raise RuntimeError(f"the constant search has stopped ({self._stopped}); ask no more")
        if self._pending is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._pending = [np.asarray(z, dtype=float) for z in self._es.ask()]
        room = self.max_evaluations - self.evaluations
        return [self._out(z) for z in self._pending[:room]]

    def tell(self, xs: list[list[float]], scores: Sequence[float | None]) -> None:
        """Scores of the vectors the last ``ask`` returned, in its order (higher is better).
        NaN, ±inf or None mark a failed program: it ranks last and never becomes ``best``."""
        if self._pending is None:
            raise RuntimeError("tell() without a pending ask()")
        k = min(len(self._pending), self.max_evaluations - self.evaluations)
        if len(xs) != k or len(scores) != k:
            raise ValueError(f"tell() needs the {k} vectors of the last ask() and one score each")
        for z, x in zip(self._pending, xs, strict=False):
            if not np.allclose(self._out(z), np.asarray(x, dtype=float), rtol=1e-9, atol=1e-12):
                raise ValueError(
                    "tell() must be given the vectors ask() returned, unchanged (round only the program)"
                )
        pending, self._pending = self._pending, None
        vals = _as_scores(scores)
        fit = _fitness(vals)
        self.evaluations += k
        self.generations += 1
        finite = [v for v in vals if math.isfinite(v)]
        gen_best = max(finite, default=-math.inf)
        for z, v in zip(pending, vals, strict=False):
            if math.isfinite(v) and v > self._best_score:
                self._best_score, self._best_x = v, z.copy()
        self._record(gen_best, finite, k)
        if k == len(pending):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._es.tell(pending, fit)
        self._update_stall(gen_best)
        if self.evaluations >= self.max_evaluations:
            self._stopped = "budget"
            return
        reason = self._stall_reason()
        if reason is not None:
            self._restart(reason)

    # -- internals ----------------------------------------------------------------------------

    def _out(self, z: np.ndarray) -> list[float]:
        return [float(v) for v in z[: self.n]]

    def _start_run(self, x_start: np.ndarray, sigma0: float) -> None:
        with warnings.catch_warnings():  # cma warns when matplotlib is missing; plots are not needed
            warnings.simplefilter("ignore")
            import cma

        rng = np.random.default_rng([self.seed, self.restarts])
        opts = {
            "popsize": self.popsize,
            "CMA_stds": list(self._scales),
            "randn": lambda *shape: rng.standard_normal(shape),
            "seed": np.nan,  # never touch numpy's global random state
            "verbose": -9,
            "tolflatfitness": 3,
            "CMA_diagonal": self.n > 100,
        }
        if self._integers.any():
            opts["minstd"] = list(np.where(self._integers, INTEGER_MIN_STD, 0.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._es = cma.CMAEvolutionStrategy(list(x_start), sigma0, opts)
        self._run_sigma0 = sigma0
        self._run_best = -math.inf
        self._since_improvement = 0
        self._stall_limit = self.settings.stall_for(self.n, self.popsize)

    def _record(self, gen_best: float, finite: list[float], k: int) -> None:
        self.history.append(
            GenerationRecord(
                generation=self.generations - 1,
                restart=self.restarts,
                popsize=self.popsize,
                evaluations=self.evaluations,
                sigma=self.sigma,
                best=gen_best,
                median=statistics.median(finite) if finite else -math.inf,
                best_so_far=self._best_score,
                failed=k - len(finite),
            )
        )

    def _update_stall(self, gen_best: float) -> None:
        if gen_best > self._run_best:
            self._run_best, self._since_improvement = gen_best, 0
        else:
            self._since_improvement += 1

    def _stall_reason(self) -> str | None:
        stops = [k for k in self._es.stop() if k not in ("callback",)]
        if stops:
            return "cma stop: " + ", ".join(sorted(stops))
        rel = np.asarray(self._es.stds, dtype=float)[: self.n] / self._scales[: self.n]
        free = ~self._integers[: self.n]
        if free.any() and float(np.max(rel[free])) < self.settings.min_sigma:
            return "sigma collapsed"
        if self._since_improvement >= self._stall_limit:
            return f"no better generation for {self._since_improvement} generations"
        return None

    def _restart(self, reason: str) -> None:
        self.restart_reasons.append(reason)
        if self.restarts >= self.settings.max_restarts:
            self._stopped = f"restarts exhausted ({reason})"
            return
        self.restarts += 1
        start = self._best_x if math.isfinite(self._best_score) else self._x0
        # a run that never saw a finite score sat in a failing region: look twice as far next time
        sigma0 = self._run_sigma0 * 2 if not math.isfinite(self._run_best) else self.settings.sigma0
        self._start_run(start.copy(), sigma0)


@dataclass
class CmaOutcome:
    """What ``optimize`` found; ``mean`` is the point to confirm (see the module docstring)."""

    best: list[float]
    best_score: float
    mean: list[float]
    evaluations: int
    generations: int
    restarts: int
    stopped: str
    episodes: int
    history: list[GenerationRecord] = field(default_factory=list)


def optimize(
    x0: Sequence[float],
    scales: Sequence[float],
    evaluate: Callable[[list[list[float]], list[int]], list[float]],
    *,
    seed: int,
    settings: CmaSettings = CmaSettings(),
    max_evaluations: int | None = None,
    seeds_for_generation: Callable[[int], list[int]],
    integers: Sequence[bool] | None = None,
    on_generation: Callable[[ConstantSearch], bool] | None = None,
) -> CmaOutcome:
    """Drive a ``ConstantSearch`` to its end: ``evaluate(vectors, episode_seeds)`` scores every
    vector of a generation on that generation's fresh seeds (``seeds_for_generation(g)``).
    ``on_generation`` runs after each tell; returning True stops early ("stopped by caller")."""
    search = ConstantSearch(
        x0, scales, seed=seed, settings=settings, max_evaluations=max_evaluations, integers=integers
    )
    episodes = 0
    stopped = None
    while search.stopped is None:
        xs = search.ask()
        seeds = list(seeds_for_generation(search.generations))
        scores = list(evaluate(xs, seeds))
        episodes += len(xs) * len(seeds)
        search.tell(xs, scores)
        if on_generation is not None and on_generation(search):
            stopped = "stopped by caller"
            break
    x, score = search.best
    return CmaOutcome(
        x,
        score,
        search.best_mean,
        search.evaluations,
        search.generations,
        search.restarts,
        stopped or search.stopped or "",
        episodes,
        list(search.history),
    )
