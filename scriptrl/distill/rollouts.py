"""Episodes played in this process by trusted batch policies: the teacher's network and the
student tree while it is being learned (both our own numpy objects, never generated code).

Many episodes run side by side so each step asks every policy once for a whole batch of
observations; ``play`` runs every policy on every seed (common random numbers, as the search
scores a generation). The final rendered program is *not* scored here: it is generated code,
so it goes through the sandboxed evaluator like any other program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

#: A policy over a batch: observations (rows) in, one action per row out.
BatchPolicy = Callable[[np.ndarray], np.ndarray]

#: Episodes stepped side by side; more costs memory (Box2D worlds) and gains little.
MAX_PARALLEL = 64


@dataclass
class PlayResult:
    returns: np.ndarray  # (policies, seeds)
    steps: int
    visited: list[np.ndarray] = field(default_factory=list)  # per policy, when recorded


class EnvPool:
    """Environments made once and reset per episode, so a tuning run does not rebuild Box2D worlds."""

    def __init__(self, renv) -> None:
        self.renv = renv
        self._free: list = []

    def take(self, n: int) -> list:
        while len(self._free) < n:
            self._free.append(self.renv.make())
        out, self._free = self._free[:n], self._free[n:]
        return out

    def give(self, envs: list) -> None:
        self._free.extend(envs)

    def close(self) -> None:
        for env in self._free:
            env.close()
        self._free = []


def play(
    pool: EnvPool, policies: Sequence[BatchPolicy], seeds: Sequence[int], record: bool = False
) -> PlayResult:
    """Every policy on every seed; returns (policies x seeds) and, if ``record``, the visited observations."""
    jobs = [(p, s) for p in range(len(policies)) for s in range(len(seeds))]
    returns = np.zeros((len(policies), len(seeds)))
    visited: list[list[np.ndarray]] = [[] for _ in policies]
    steps = 0
    for start in range(0, len(jobs), MAX_PARALLEL):
        chunk = jobs[start : start + MAX_PARALLEL]
        steps += _play_chunk(pool, policies, seeds, chunk, returns, visited if record else None)
    stacked = [np.concatenate(v) if v else np.zeros((0, 0)) for v in visited] if record else []
    return PlayResult(returns, steps, stacked)


def _play_chunk(pool, policies, seeds, chunk, returns, visited) -> int:
    envs = pool.take(len(chunk))
    try:
        obs = [
            np.asarray(env.reset(seed=int(seeds[s]))[0], dtype=np.float64).ravel()
            for env, (_, s) in zip(envs, chunk, strict=True)
        ]
        alive = list(range(len(chunk)))
        steps = 0
        while alive:
            actions: dict[int, int] = {}
            for p in {chunk[i][0] for i in alive}:
                mine = [i for i in alive if chunk[i][0] == p]
                batch = np.stack([obs[i] for i in mine])
                if visited is not None:
                    visited[p].append(batch)
                for i, a in zip(mine, policies[p](batch), strict=True):
                    actions[i] = int(a)
            still = []
            for i in alive:
                o, r, term, trunc, _ = envs[i].step(actions[i])
                p, s = chunk[i]
                returns[p, s] += float(r)
                steps += 1
                if term or trunc:
                    continue
                obs[i] = np.asarray(o, dtype=np.float64).ravel()
                still.append(i)
            alive = still
        return steps
    finally:
        pool.give(envs)
