"""Env steps per second of a tuning generation, evaluated as families (one sandbox worker for
all variants of a program, ``scriptrl.evaluate.family``) and one program per worker.

A generation here is what the search's tuning lanes send the executor: ``--population``
variants of one program (its tunable constants perturbed by Gaussian noise, ``--sigma`` times
their size, at least ``--sigma``), all on the same ``--episodes`` fresh seeds. Rounds alternate
between the two ways, so a change in machine load hits both alike; the table gives medians.

    python benchmarks/family_throughput.py --env LunarLander-v3 --program run/best_policy.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

from scriptrl.envs import resolve_env
from scriptrl.evaluate import EvalConfig
from scriptrl.evaluate.executors import EvalJob, LocalExecutor
from scriptrl.generators.tuning import extract_constants, with_constants


def generation(source: str, population: int, sigma: float, rng: random.Random) -> list[str]:
    """Variants of ``source`` as a CMA-ES generation around it would look."""
    values = extract_constants(source)
    return [
        with_constants(source, [v + sigma * max(abs(v), 1.0) * rng.gauss(0, 1) for v in values])
        for _ in range(population)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", required=True)
    ap.add_argument("--program", required=True, type=Path, help="a policy file with tunable constants")
    ap.add_argument("--population", type=int, default=56)
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--sigma", type=float, default=0.3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/family_throughput.json"))
    args = ap.parse_args()
    env = resolve_env(args.env)
    source = args.program.read_text()
    rng = random.Random(0)
    executors = {
        way: LocalExecutor(args.workers, replace(EvalConfig(), families=(way == "families")))
        for way in ("families", "one per worker")
    }
    rates: dict[str, list[float]] = {way: [] for way in executors}
    try:
        for ex in executors.values():  # start the pools and their zygotes outside the timing
            ex.map([EvalJob(source, env, (0,), "dev")] * args.workers)
        for r in range(args.rounds):
            seeds = tuple(range(10_000 + r * args.episodes, 10_000 + (r + 1) * args.episodes))
            variants = generation(source, args.population, args.sigma, rng)
            jobs = [EvalJob(s, env, seeds, "dev") for s in variants]
            order = list(executors) if r % 2 == 0 else list(reversed(list(executors)))
            for way in order:
                t = time.perf_counter()
                results = executors[way].map(jobs)
                rates[way].append(sum(x.env_steps for x in results) / (time.perf_counter() - t))
    finally:
        for ex in executors.values():
            ex.close()
    med = {way: statistics.median(v) for way, v in rates.items()}
    print(
        f"{args.env}, {args.population} variants x {args.episodes} episodes, {args.workers} workers, "
        f"{args.rounds} rounds, load {os.getloadavg()[0]:.2f}"
    )
    print("| way | env steps/s (median) | rounds |")
    print("|---|---|---|")
    for way, v in rates.items():
        print(f"| {way} | {med[way]:,.0f} | {', '.join(f'{x:,.0f}' for x in v)} |")
    print(f"ratio families / one per worker: {med['families'] / med['one per worker']:.2f}")
    args.out.write_text(
        json.dumps(
            {
                "env": args.env,
                "program": str(args.program),
                "population": args.population,
                "episodes": args.episodes,
                "workers": args.workers,
                "rates": rates,
                "medians": med,
                "machine": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
                "load": os.getloadavg()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
