"""Raw in-process env steps/s against sandboxed scriptrl evaluation steps/s, same policy, one run.

Usage: python benchmarks/eval_throughput.py [--episodes N] [--rounds R] [--out FILE.json]

The raw loop is what a person writes by hand: ``gym.make`` with its default wrappers and
a Python policy called every step. The scriptrl figure includes everything: starting
and locking down the worker, validating every action, digests and statistics.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from scriptrl.envs import resolve_env
from scriptrl.evaluate import EvalConfig, evaluate

POLICIES = {
    # Trivial policies: the point is evaluator overhead, not control quality.
    "CartPole-v1": "def policy(obs):\n    return 1 if obs[2] + 0.5 * obs[3] > 0 else 0\n",
    "LunarLander-v3": "def policy(obs):\n    return 2 if obs[1] < 0.5 else 0\n",
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


def sandboxed_steps_per_second(env_id: str, source: str, seeds: list[int]) -> tuple[float, int, dict]:
    t0 = time.perf_counter()
    result = evaluate(source, resolve_env(env_id), seeds, EvalConfig())
    dt = time.perf_counter() - t0
    assert not result.failures, result.failures[:1]
    return result.env_steps / dt, result.env_steps, result.isolation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3, help="alternating raw/sandboxed rounds; medians reported")
    ap.add_argument("--out", default="benchmarks/eval_throughput.json")
    args = ap.parse_args()
    seeds = list(range(1000, 1000 + args.episodes))
    rows = []
    for env_id, source in POLICIES.items():
        raw, sandboxed = [], []
        for _ in range(args.rounds):
            r, raw_steps = raw_steps_per_second(env_id, source, seeds)
            s, sb_steps, isolation = sandboxed_steps_per_second(env_id, source, seeds)
            assert raw_steps == sb_steps, (raw_steps, sb_steps)
            raw.append(r)
            sandboxed.append(s)
        row = {
            "env": env_id,
            "episodes": args.episodes,
            "steps_per_round": raw_steps,
            "raw_steps_per_s": statistics.median(raw),
            "scriptrl_steps_per_s": statistics.median(sandboxed),
            "ratio": statistics.median(sandboxed) / statistics.median(raw),
            "isolation_all_on": all(v.startswith("on") for v in isolation.values()),
        }
        rows.append(row)
    print(f"{'env':<16}{'steps':>8}{'raw steps/s':>14}{'scriptrl steps/s':>18}{'ratio':>8}")
    for r in rows:
        print(f"{r['env']:<16}{r['steps_per_round']:>8}{r['raw_steps_per_s']:>14,.0f}{r['scriptrl_steps_per_s']:>18,.0f}{r['ratio']:>8.2f}")
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
