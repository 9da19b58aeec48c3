"""The robustness gate: how much of its margin over a random policy a program keeps under perturbation."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
from gymnasium import spaces

from scriptrl.envs import ResolvedEnv
from scriptrl.glassbox.verify.perturb import (
    HOLDOUT_START,
    NOISE_LEVELS,
    PHYSICS,
    PerturbedEnv,
    _random_rollouts,
)
from scriptrl.glassbox.verify.results import Budget, Robustness
from scriptrl.program import Program


def _typical_ranges(renv: ResolvedEnv, space: spaces.Space, seen: list) -> np.ndarray | None:
    """The range each observation component typically takes: the curated description, else rollouts."""
    if not isinstance(space, spaces.Box) or np.dtype(space.dtype).kind != "f":
        return None
    size = int(np.prod(space.shape))
    comps = renv.description.observation
    if len(comps) == size and all(c.low is not None and c.high is not None for c in comps):
        return np.array(
            [float(c.high) - float(c.low) for c in comps if c.high is not None and c.low is not None]
        )
    arr = np.asarray(seen, dtype=np.float64).reshape(len(seen), -1)
    return np.maximum(arr.max(0) - arr.min(0), 1e-6) if len(seen) else None


def _retention(score: float, random: float, clean: float, random_clean: float) -> float | None:
    span = clean - random_clean
    if not math.isfinite(span) or span <= 1e-9:
        return None
    return (score - random) / span


def levels_text(min_retention: float, noise_levels: Sequence[float], gate: bool) -> str:
    """The gate's levels in one sentence, printed with every report so a reader knows what PASS meant."""
    noise = ", ".join(f"{100 * n:g}%" for n in noise_levels)
    verdict = "a failure (--gate)" if gate else "a warning (add --gate to make it a failure)"
    return (
        f"robustness levels: keep >= {100 * min_retention:.0f}% of the clean margin over a random policy"
        f" under observation noise of {noise} of each component's range, over twice the horizon and under"
        f" each physics change; below a level is {verdict}; a failed episode is always a failure"
    )


class _Gate:
    """One robustness run: each condition scored on the same seeds against a random policy, in budget."""

    def __init__(
        self,
        program: Program,
        renv: ResolvedEnv,
        seeds: list[int],
        min_retention: float,
        gate: bool,
        unsafe: bool,
        budget: Budget,
        say: Callable[[str], None],
    ) -> None:
        self.program, self.renv, self.seeds = program, renv, seeds
        self.min_retention, self.gate, self.unsafe, self.budget, self.say = (
            min_retention,
            gate,
            unsafe,
            budget,
            say,
        )
        self.rows: list[Robustness] = []
        self.todo = 1

    def score(self, env: ResolvedEnv):
        from scriptrl.evaluate import EvalConfig, evaluate

        share = self.budget.share(self.todo) - time.monotonic()
        self.todo = max(1, self.todo - 1)
        config = EvalConfig(unsafe_in_process=self.unsafe, episode_timeout=max(1.0, min(120.0, share)))
        return evaluate(self.program, env, self.seeds, config, split="verify")

    def random_score(self, env: ResolvedEnv) -> tuple[float, list[list[float]]]:
        horizon = getattr(env, "horizon", None) or env.max_episode_steps or 1000
        _, rewards = _random_rollouts(env, self.seeds, max_steps=int(horizon))
        return statistics.fmean(sum(r) for r in rewards), rewards

    def out_of_time(self, condition: str) -> bool:
        if self.budget.left() > 0.5:
            return False
        self.rows.append(
            Robustness(
                condition,
                None,
                None,
                None,
                None,
                None,
                f"not run: verify's time limit of {self.budget.seconds:g} s was reached",
                finished=False,
            )
        )
        return True

    def failed(self, condition: str, res, rnd: float | None = None) -> bool:
        """Failed episodes: a failure, except episodes stopped only by this condition's share of the time."""
        if not res.failures:
            return False
        f = res.failures[0]
        detail = f"{len(res.failures)} episode(s) failed, e.g. seed {f['seed']}: {f['reason']}"
        timed = all(str(x["reason"]).startswith("timeout: the episode took over") for x in res.failures)
        if timed:
            self.rows.append(
                Robustness(
                    condition,
                    res.mean,
                    tuple(res.ci95),
                    rnd,
                    None,
                    None,
                    f"not finished: {detail} (its share of verify's time limit)",
                    finished=False,
                )
            )
        else:
            self.rows.append(Robustness(condition, res.mean, tuple(res.ci95), rnd, None, False, detail))
        return True

    def verdict(self, condition: str, res, rnd: float, ret: float | None, detail: str) -> None:
        ok = ret is not None and ret >= self.min_retention
        passed: bool | None = ok
        if not ok:
            detail += f" (below the {100 * self.min_retention:.0f}% level)"
            passed = False if self.gate else None
        self.rows.append(
            Robustness(
                condition,
                res.mean,
                tuple(res.ci95),
                rnd,
                ret,
                passed,
                detail,
                warning=not ok and not self.gate,
            )
        )

    def judge(self, condition: str, env: ResolvedEnv, clean, rand_clean: float) -> None:
        if self.out_of_time(condition):
            return
        self.say(condition)
        res = self.score(env)
        rnd, _ = self.random_score(env)
        if self.failed(condition, res, rnd):
            return
        ret = _retention(res.mean, rnd, clean.mean, rand_clean)
        detail = (
            f"keeps {100 * ret:.0f}% of the clean margin over random"
            if ret is not None
            else "no margin to keep"
        )
        self.verdict(condition, res, rnd, ret, detail)

    def noise(self, noise_levels: Sequence[float], clean, rand_clean: float) -> None:
        """Each noise level, scaled per component by the range it typically takes."""
        probe = self.renv.make()
        space = probe.observation_space
        probe.close()
        seen, _ = _random_rollouts(self.renv, self.seeds[:3])
        ranges = _typical_ranges(self.renv, space, seen)
        if ranges is None:
            self.rows.append(
                Robustness(
                    "observation noise",
                    None,
                    None,
                    None,
                    None,
                    None,
                    "not applicable: observations are not continuous",
                )
            )
            return
        for level in noise_levels:
            sigma = tuple(float(level * r) for r in ranges)
            self.judge(
                f"noise {100 * level:g}% of range",
                PerturbedEnv.of(self.renv, condition=f"noise {level:g}", noise=sigma),
                clean,
                rand_clean,
            )

    def physics(self, physics: list, clean, rand_clean: float) -> None:
        """Each physics change scriptrl knows for this environment (``verify/perturb.py``)."""
        if not physics:
            self.rows.append(
                Robustness(
                    "physics",
                    None,
                    None,
                    None,
                    None,
                    None,
                    f"not applicable: scriptrl knows no physical parameters of {self.renv.id}",
                )
            )
        for name, kwargs, attrs in physics:
            self.judge(
                name,
                PerturbedEnv.of(
                    self.renv, condition=name, extra_kwargs=tuple(kwargs.items()), attrs=tuple(attrs.items())
                ),
                clean,
                rand_clean,
            )

    def horizon(self, clean, rand_clean_rewards: list) -> None:
        limit = self.renv.max_episode_steps
        if not limit or ":" in self.renv.id:
            self.rows.append(
                Robustness(
                    "horizon x2",
                    None,
                    None,
                    None,
                    None,
                    None,
                    "not applicable: the environment has no registered time limit",
                )
            )
            return
        if self.out_of_time("horizon x2"):
            return
        self.say("horizon x2")
        long_env = PerturbedEnv.of(self.renv, condition="horizon x2", horizon=2 * limit)
        res = self.score(long_env)
        _, rand_rewards = _random_rollouts(long_env, self.seeds, max_steps=2 * limit)
        # Episodes that lived to the usual limit: what they earn in the extra steps, against
        # what they earned before it (same seeds, so the first part is the same episode).
        reached = [i for i, n in enumerate(clean.lengths) if n >= limit]
        if self.failed("horizon x2", res):
            return
        if not reached:
            self.rows.append(
                Robustness(
                    "horizon x2",
                    res.mean,
                    tuple(res.ci95),
                    None,
                    None,
                    None,
                    f"not applicable: no episode lasted to the time limit of {limit} steps",
                )
            )
            return
        second = statistics.fmean(res.returns[i] - clean.returns[i] for i in reached)
        first = statistics.fmean(clean.returns[i] for i in reached)
        rand_second = statistics.fmean(sum(r[limit:]) for r in rand_rewards)
        rand_first = statistics.fmean(sum(r[:limit]) for r in rand_clean_rewards)
        ret = _retention(second, rand_second, first, rand_first)
        detail = (
            f"steps {limit}-{2 * limit - 1} keep {100 * ret:.0f}%"
            f" of the margin over random of steps 0-{limit - 1}"
            if ret is not None
            else "the first part is no better than random"
        )
        self.verdict("horizon x2", res, rand_second, ret, detail)


def robustness_gate(
    program: Program,
    renv: ResolvedEnv,
    *,
    episodes: int = 20,
    seed: int = HOLDOUT_START,
    noise_levels: Sequence[float] = NOISE_LEVELS,
    min_retention: float = 0.75,
    gate: bool = False,
    unsafe: bool = False,
    progress: Callable[[str], None] | None = None,
    budget: Budget | None = None,
) -> list[Robustness]:
    """Scores under noise, a doubled horizon and perturbed physics, each against a random policy.

    Below ``min_retention`` is a failure only with ``gate``; otherwise the row keeps its
    measured figure and a warning. Every condition gets a share of ``budget``.
    """
    budget = budget or Budget()
    g = _Gate(
        program,
        renv,
        list(range(seed, seed + episodes)),
        min_retention,
        gate,
        unsafe,
        budget,
        progress or (lambda _msg: None),
    )
    physics = PHYSICS.get(renv.id) or []
    g.todo = 2 + len(noise_levels) + len(physics)
    g.say("clean")
    clean = g.score(renv)
    rand_clean, rand_clean_rewards = g.random_score(renv)
    if g.failed("clean", clean, rand_clean):
        return g.rows
    g.rows.append(
        Robustness(
            "clean",
            clean.mean,
            tuple(clean.ci95),
            rand_clean,
            1.0,
            None,
            f"reference: {episodes} episodes, seeds {g.seeds[0]}-{g.seeds[-1]}",
        )
    )
    if _retention(clean.mean, rand_clean, clean.mean, rand_clean) is None:
        g.rows[-1].detail += "; no better than a random policy, so retention cannot be measured"
        return g.rows
    g.noise(noise_levels, clean, rand_clean)
    g.horizon(clean, rand_clean_rewards)
    g.physics(physics, clean, rand_clean)
    return g.rows
