"""Raw in-process env steps/s against sandboxed scriptrl evaluation steps/s, same policy, one run.

Usage: python benchmarks/eval_throughput.py [--episodes N] [--rounds R] [--out FILE.json]

The raw loop is what a person writes by hand: ``gym.make`` with its default wrappers and
a Python policy called every step. The scriptrl figures include everything: building the
environments, validating every action, digests and statistics, and

- cold: one evaluation from nothing (`scriptrl eval`): starting and locking down a fresh
  worker interpreter is inside the figure;
- warm: the way the search evaluates, with a worker pre-started (``warm_spare``) while the
  previous evaluation ran;
- steady: ten times the episodes in one evaluation, which shows the per-step cost alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from scriptrl.envs import resolve_env
from scriptrl.evaluate import EvalConfig, evaluate, release_spare_workers

POLICIES = {
    # Trivial policies: the point is evaluator overhead, not control quality.
    "CartPole-v1": "def policy(obs):\n    return 1 if obs[2] + 0.5 * obs[3] > 0 else 0\n",
    "LunarLander-v3": "def policy(obs):\n    if obs[3] < -0.05:\n        return 2\n"
                      "    return 1 if obs[4] < -0.05 else (3 if obs[4] > 0.05 else 0)\n",
}


def raw_steps_per_second(env_id: str, source: str, seeds: list[int]) -> tuple[float, int]:
    namespace: dict = {}
    exec(source, namespace)
    policy = namespace["policy"]
    env = gym.make(env_id)
    steps = 0
    t0 = time.perf_counter()
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, _, term, trunc, _ = env.step(policy(obs))
            steps += 1
            done = term or trunc
    dt = time.perf_counter() - t0
    env.close()
    return steps / dt, steps


def sandboxed_steps_per_second(env_id: str, source: str, seeds: list[int], config: EvalConfig) -> tuple[float, int]:
    renv = resolve_env(env_id)
    t0 = time.perf_counter()
    result = evaluate(source, renv, seeds, config)
    dt = time.perf_counter() - t0
    assert not result.failures, result.failures[:1]
    return result.env_steps / dt, result.env_steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3, help="alternating raw/sandboxed rounds; medians reported")
    ap.add_argument("--out", default="benchmarks/eval_throughput.json")
    args = ap.parse_args()
    seeds = list(range(1000, 1000 + args.episodes))
    rows = []
    warm = EvalConfig(warm_spare=True)
    long_seeds = list(range(1000, 1000 + 10 * args.episodes))
    for env_id, source in POLICIES.items():
        raw, cold, hot, raw_long, steady = [], [], [], [], []
        sandboxed_steps_per_second(env_id, source, seeds, warm)  # starts the first spare
        for _ in range(args.rounds):
            r, raw_steps = raw_steps_per_second(env_id, source, seeds)
            c, sb_steps = sandboxed_steps_per_second(env_id, source, seeds, EvalConfig())
            w, _ = sandboxed_steps_per_second(env_id, source, seeds, warm)
            rl, long_steps = raw_steps_per_second(env_id, source, long_seeds)
            st, st_steps = sandboxed_steps_per_second(env_id, source, long_seeds, warm)
            assert raw_steps == sb_steps and long_steps == st_steps, (raw_steps, sb_steps, long_steps, st_steps)
            raw.append(r), cold.append(c), hot.append(w), raw_long.append(rl), steady.append(st)
        med = statistics.median
        rows.append({
            "env": env_id, "episodes": args.episodes, "steps_per_round": raw_steps,
            "raw_steps_per_s": med(raw), "cold_steps_per_s": med(cold), "warm_steps_per_s": med(hot),
            "cold_ratio": med(cold) / med(raw), "warm_ratio": med(hot) / med(raw),
            "steady_episodes": len(long_seeds), "steady_raw_steps_per_s": med(raw_long),
            "steady_steps_per_s": med(steady), "steady_ratio": med(steady) / med(raw_long),
        })  # fmt: skip
    release_spare_workers()
    print(f"{'env':<16}{'steps':>8}{'raw/s':>10}{'cold/s':>10}{'warm/s':>10}{'cold':>7}{'warm':>7}{'steady':>8}")
    for r in rows:
        print(f"{r['env']:<16}{r['steps_per_round']:>8}{r['raw_steps_per_s']:>10,.0f}{r['cold_steps_per_s']:>10,.0f}"
              f"{r['warm_steps_per_s']:>10,.0f}{r['cold_ratio']:>7.2f}{r['warm_ratio']:>7.2f}{r['steady_ratio']:>8.2f}")  # fmt: skip
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "load_average": os.getloadavg(),
    }
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
