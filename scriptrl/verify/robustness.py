"""The robustness gate: how much of its margin over a random policy a program keeps under perturbation."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

import numpy as np
from gymnasium import spaces

from scriptrl.envs import ResolvedEnv
from scriptrl.program import Program
from scriptrl.verify.perturb import HOLDOUT_START, NOISE_LEVELS, PHYSICS, PerturbedEnv, _random_rollouts
from scriptrl.verify.results import Robustness


def _typical_ranges(renv: ResolvedEnv, space: spaces.Space, seen: list) -> np.ndarray | None:
    """The range each observation component typically takes: the curated description, else rollouts."""
    if not isinstance(space, spaces.Box) or np.dtype(space.dtype).kind != "f":
        return None
    size = int(np.prod(space.shape))
    comps = renv.description.observation
    if len(comps) == size and all(c.low is not None and c.high is not None for c in comps):
        return np.array([float(c.high) - float(c.low) for c in comps])
    arr = np.asarray(seen, dtype=np.float64).reshape(len(seen), -1)
    return np.maximum(arr.max(0) - arr.min(0), 1e-6) if len(seen) else None


def _retention(score: float, random: float, clean: float, random_clean: float) -> float | None:
    span = clean - random_clean
    if not math.isfinite(span) or span <= 1e-9:
        return None
    return (score - random) / span


def robustness_gate(program: Program, renv: ResolvedEnv, *, episodes: int = 20, seed: int = HOLDOUT_START,
                    noise_levels: Sequence[float] = NOISE_LEVELS, min_retention: float = 0.75,
                    unsafe: bool = False, progress: Callable[[str], None] | None = None) -> list[Robustness]:  # fmt: skip
    """Scores under noise, a doubled horizon and perturbed physics, each against a random policy."""
    from scriptrl.evaluate import EvalConfig, evaluate

    seeds = list(range(seed, seed + episodes))
    config = EvalConfig(unsafe_in_process=unsafe)
    say = progress or (lambda _msg: None)
    rows: list[Robustness] = []

    def score(env: ResolvedEnv):
        return evaluate(program, env, seeds, config, split="verify")

    def random_score(env: ResolvedEnv) -> tuple[float, list[list[float]]]:
        _, rewards = _random_rollouts(env, seeds, max_steps=env_max_steps(env))
        return statistics.fmean(sum(r) for r in rewards), rewards

    def env_max_steps(env: ResolvedEnv) -> int:
        horizon = getattr(env, "horizon", None) or env.max_episode_steps or 1000
        return int(horizon)

    say("clean")
    clean = score(renv)
    rand_clean, rand_clean_rewards = random_score(renv)
    if clean.failures:
        f = clean.failures[0]
        rows.append(Robustness("clean", clean.mean, tuple(clean.ci95), rand_clean, None, False,
                               f"{len(clean.failures)} episode(s) failed, e.g. seed {f['seed']}: {f['reason']}"))  # fmt: skip
        return rows
    rows.append(Robustness("clean", clean.mean, tuple(clean.ci95), rand_clean, 1.0, None,
                           f"reference: {episodes} episodes, seeds {seeds[0]}-{seeds[-1]}"))  # fmt: skip
    if _retention(clean.mean, rand_clean, clean.mean, rand_clean) is None:
        rows[-1].detail += "; no better than a random policy, so retention cannot be measured"
        return rows

    def judge(condition: str, env: ResolvedEnv) -> None:
        say(condition)
        res = score(env)
        rnd, _ = random_score(env)
        ret = _retention(res.mean, rnd, clean.mean, rand_clean)
        ok = ret is not None and ret >= min_retention and not res.failures
        detail = f"keeps {100 * ret:.0f}% of the clean margin over random" if ret is not None else ""
        if res.failures:
            f = res.failures[0]
            detail = f"{len(res.failures)} episode(s) failed, e.g. seed {f['seed']}: {f['reason']}"
        elif not ok:
            detail += f" (needs {100 * min_retention:.0f}%)"
        rows.append(Robustness(condition, res.mean, tuple(res.ci95), rnd, ret, ok, detail))

    probe = renv.make()
    space = probe.observation_space
    probe.close()
    seen, _ = _random_rollouts(renv, seeds[:3])
    ranges = _typical_ranges(renv, space, seen)
    if ranges is None:
        rows.append(Robustness("observation noise", None, None, None, None, None,
                               "not applicable: observations are not continuous"))  # fmt: skip
    else:
        for level in noise_levels:
            sigma = tuple(float(level * r) for r in ranges)
            judge(f"noise {100 * level:g}% of range", PerturbedEnv.of(renv, condition=f"noise {level:g}", noise=sigma))

    limit = renv.max_episode_steps
    if not limit or ":" in renv.id:
        rows.append(Robustness("horizon x2", None, None, None, None, None,
                               "not applicable: the environment has no registered time limit"))  # fmt: skip
    else:
        say("horizon x2")
        long_env = PerturbedEnv.of(renv, condition="horizon x2", horizon=2 * limit)
        res = score(long_env)
        _, rand_rewards = _random_rollouts(long_env, seeds, max_steps=2 * limit)
        # Episodes that lived to the usual limit: what they earn in the extra steps, against
        # what they earned before it (same seeds, so the first part is the same episode).
        reached = [i for i, n in enumerate(clean.lengths) if n >= limit]
        if res.failures:
            f = res.failures[0]
            rows.append(Robustness("horizon x2", res.mean, tuple(res.ci95), None, None, False,
                                   f"{len(res.failures)} episode(s) failed, e.g. seed {f['seed']}: {f['reason']}"))  # fmt: skip
        elif not reached:
            rows.append(Robustness("horizon x2", res.mean, tuple(res.ci95), None, None, None,
                                   f"not applicable: no episode lasted to the time limit of {limit} steps"))  # fmt: skip
        else:
            second = statistics.fmean(res.returns[i] - clean.returns[i] for i in reached)
            first = statistics.fmean(clean.returns[i] for i in reached)
            rand_second = statistics.fmean(sum(r[limit:]) for r in rand_rewards)
            rand_first = statistics.fmean(sum(r[:limit]) for r in rand_clean_rewards)
            ret = _retention(second, rand_second, first, rand_first)
            ok = ret is not None and ret >= min_retention
            detail = (f"steps {limit}-{2 * limit - 1} keep {100 * ret:.0f}% of the margin over random of steps 0-{limit - 1}"
                      if ret is not None else "the first part is no better than random")  # fmt: skip
            if not ok:
                detail += f" (needs {100 * min_retention:.0f}%)"
            rows.append(Robustness("horizon x2", res.mean, tuple(res.ci95), rand_second, ret, ok, detail))

    physics = PHYSICS.get(renv.id)
    if not physics:
        rows.append(Robustness("physics", None, None, None, None, None,
                               f"not applicable: scriptrl knows no physical parameters of {renv.id}"))  # fmt: skip
    else:
        for name, kwargs, attrs in physics:
            judge(name, PerturbedEnv.of(renv, condition=name, extra_kwargs=tuple(kwargs.items()),
                                        attrs=tuple(attrs.items())))  # fmt: skip
    return rows

