"""Tuning a program's numeric constants with CMA-ES, keeping its structure.

Which numbers are tuned (see ``astutil.numeric_sites`` for the full rule): every float
literal except indices, clip bounds and f-string parts, and ints that are operands of
``+ - * /`` or of a comparison (``player_sum >= 17``). Never tuned: subscript indices
(``obs[2]``), ``range()`` arguments, returned action values (``return 1``,
``return 1 if s > 0 else 0``, ``action = 2 ... return action``), lookup-table entries,
clip bounds (``min(max(x, lo), hi)``, ``np.clip``: they are the action bounds), and
other ints such as ``round(x, 2)`` or ``[0.0] * 4``, and numbers that cannot change an action
(``ast_live``: code that never runs or whose result nothing reads, overridden defaults, the
test of a branch whose two sides do the same). ``TuneResult.n_constants`` counts what is
left; ``n_tuned`` how many of them one call varied.

Search space: CMA-ES works on z (starting at 0) and constant i is ``v_i + s_i * z_i``
with ``s_i = max(|v_i|, floor_i)``: relative steps for ordinary constants, additive
steps of size ``floor_i`` for zeros and tiny ones (``floor_i`` defaults to 0.1, or comes
from ``scales``, e.g. a component's typical range). ``sigma0 = 0.1 + 0.3 * temperature``.
Values are written back with 4 significant digits; ints are rounded and stay ints.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from scriptrl.generators import astutil as au
from scriptrl.generators.base import Candidate, GenContext, GeneratorCall, ParentInfo, clamp_temperature

#: At most this many constants are tuned in one call (chosen by the rng when there are more).
MAX_TUNED = 40


def _tunable(source: str) -> tuple[au.Analysis, list[int]]:
    """The analysis and the indices of the sites tuning varies: numbers that can change an
    action (not indices, actions, tables, clip bounds, nor inert numbers: see ``ast_live``)."""
    an = au.Analysis.of(source)
    return an, [i for i, s in enumerate(an.sites) if s.role == "tunable"]


def extract_constants(source: str) -> list[float]:
    """The tunable numeric literals of ``source``, in AST order (signed; ints as ints)."""
    an, idx = _tunable(source)
    return [an.sites[i].value for i in idx]


def with_constants(source: str, values: Sequence[float]) -> str:
    """``source`` with its tunable constants replaced by ``values``; all other text is kept."""
    an, idx = _tunable(source)
    if len(values) != len(idx):
        raise ValueError(f"expected {len(idx)} values for the program's tunable constants, got {len(values)}")
    return au.write_numbers(source, an, {i: float(v) for i, v in zip(idx, values, strict=True)})


@dataclass
class TuneResult:
    source: str
    score: float
    evaluations: int
    improved: bool
    n_constants: int  # constants that can change an action (``numeric_sites`` role "tunable")

    @property
    def n_tuned(self) -> int:
        """How many constants the tuner varied: at most ``MAX_TUNED`` of ``n_constants``."""
        return min(self.n_constants, MAX_TUNED)


def _finite_or(x: float, default: float) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) else default


def tune_constants(
    source: str,
    score_batch: Callable[[list[str]], list[float]],
    budget: int,
    temperature: float,
    rng: random.Random,
    baseline: float | None = None,
    scales: Sequence[float] | None = None,
    good_enough: float | None = None,
) -> TuneResult:
    """Tune the constants of ``source`` with CMA-ES for at most ``budget`` program evaluations,
    or until a batch reaches ``good_enough`` (the search's target: more would only cost steps).

    ``score_batch`` scores a list of sources (higher is better). Without ``baseline`` the
    original is scored in the first batch (one evaluation). ``scales`` optionally gives a
    step floor per tunable constant (same order as ``extract_constants``). The best source
    is returned only when it strictly beats the baseline; otherwise the original.
    """
    with warnings.catch_warnings():  # cma warns when matplotlib is missing; plots are not needed
        warnings.simplefilter("ignore")
        import cma  # imported here: it is slow to import and only tuning needs it

    temperature = clamp_temperature(temperature)
    if baseline is not None and math.isnan(baseline):
        baseline = None  # nothing compares greater than NaN: score the original instead
    an, idx = _tunable(source)
    n_all = len(idx)
    if n_all == 0 or budget <= 0:
        score = baseline if baseline is not None else float("nan")
        return TuneResult(source, score, 0, False, n_all)
    chosen = sorted(rng.sample(range(n_all), MAX_TUNED)) if n_all > MAX_TUNED else list(range(n_all))
    x0 = np.array([float(an.sites[idx[k]].value) for k in chosen])
    nonzero = [abs(v) for v in x0 if v != 0 and math.isfinite(v)]
    default_floor = max(0.1, float(np.mean(nonzero))) if nonzero else 0.1
    floors = np.array(
        [_finite_or(scales[k], default_floor) if scales is not None else default_floor for k in chosen]
    )
    steps = np.maximum(np.abs(x0), np.abs(floors))
    steps[steps <= 0] = 0.1
    dim = len(chosen)
    # pycma needs at least two dimensions: a lone constant gets a dummy partner.
    pad = 1 if dim == 1 else 0

    def build(z: np.ndarray) -> str:
        values = x0 + steps * z[:dim]
        return au.write_numbers(source, an, {idx[chosen[k]]: float(values[k]) for k in range(dim)})

    evaluations = 0
    cache: dict[str, float] = {}
    if baseline is None:
        baseline = _finite_or(score_batch([source])[0], -math.inf)
        evaluations += 1
    cache[source] = baseline
    best_score, best_source = baseline, source

    sigma0 = 0.1 + 0.3 * temperature
    best_z = np.zeros(dim + pad)
    sigma = sigma0
    stalls = 0
    # Returns are step functions of the constants: plateaus are common. pycma stops on them,
    # so a stopped run restarts from the best point found with twice the step size.
    reached = good_enough is not None and best_score >= good_enough
    while evaluations < budget and stalls < 5 and not reached:
        opts = {
            "seed": rng.randrange(1, 2**31 - 1),
            "verbose": -9,
            "tolflatfitness": 3,
            "CMA_diagonal": dim > 100,
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            es = cma.CMAEvolutionStrategy(best_z.copy(), sigma, opts)
        while evaluations < budget and stalls < 5:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                zs = es.ask()
            sources = [build(np.asarray(z)) for z in zs]
            fresh = list(dict.fromkeys(s for s in sources if s not in cache))
            room = budget - evaluations
            partial = len(fresh) > room
            fresh = fresh[:room]
            if fresh:
                scores = score_batch(fresh)
                evaluations += len(fresh)
                for src, v in zip(fresh, scores, strict=True):
                    cache[src] = _finite_or(v, -math.inf)
                stalls = 0
            else:
                stalls += 1
            for z, src in zip(zs, sources, strict=True):
                if cache.get(src, -math.inf) > best_score:
                    best_score, best_source, best_z = cache[src], src, np.asarray(z, dtype=float).copy()
            reached = good_enough is not None and best_score >= good_enough
            if partial or reached:
                break
            worst = min((v for v in cache.values() if math.isfinite(v)), default=0.0)
            fitness = [-(cache[src] if math.isfinite(cache[src]) else worst - 1e6) for src in sources]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                es.tell(zs, fitness)
            if es.stop():
                break
        sigma = min(2.0 * sigma, 2.0)
    improved = best_score > baseline
    return TuneResult(
        best_source if improved else source,
        best_score if improved else baseline,
        evaluations,
        improved,
        n_all,
    )


class ConstantTuner:
    """CMA-ES constant tuning as a generator step, with ``Candidate`` bookkeeping ("cma.tune")."""

    name = "cma"

    def scales(self, ctx: GenContext, source: str) -> list[float]:
        """Per-constant step floors from the environment: a component's range for thresholds on it."""
        from scriptrl.generators.layout import layout_for
        from scriptrl.generators.offline import _Env

        env = _Env(layout_for(ctx))
        an = env.analyze(source)
        return [0.5 * env.site_scale(an, s) for s in an.sites if s.role == "tunable"]

    def tune(
        self,
        ctx: GenContext | None,
        parent: ParentInfo,
        score_batch: Callable[[list[str]], list[float]],
        budget: int,
        temperature: float,
        rng: random.Random,
    ) -> tuple[Candidate | None, TuneResult]:
        """Tune ``parent``; the candidate is None when nothing beat ``parent.score``."""
        t0 = time.perf_counter()
        scales = None
        if ctx is not None:
            try:
                scales = self.scales(ctx, parent.source)
            except Exception:  # an exotic environment only loses the better step sizes
                scales = None
        baseline = parent.score if parent.score is not None and math.isfinite(parent.score) else None
        result = tune_constants(parent.source, score_batch, budget, temperature, rng, baseline, scales)
        if not result.improved:
            return None, result
        of = f" of {result.n_constants}" if result.n_tuned < result.n_constants else ""
        note = (
            f"tuned {result.n_tuned}{of} constants with CMA-ES "
            f"({result.evaluations} evaluations): {parent.score:.4g} -> {result.score:.4g}"
        )
        cand = Candidate(
            result.source,
            (parent.id,),
            "cma.tune",
            "scalar",
            clamp_temperature(temperature),
            note,
            GeneratorCall(latency_s=time.perf_counter() - t0),
        )
        return cand, result
