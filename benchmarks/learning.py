"""Offline-generator learning on five environments, three search seeds each.

Usage: python benchmarks/learning.py [--envs A,B] [--seeds 0,1,2] [--scale 1.0] [--out FILE.json]

For each run: holdout score of the final champion, search env steps (cheap + full dev +
tuning; holdout and audit confirmations are counted apart, like PPO's evaluation
episodes), wall seconds, and whether and when the goal was reached. Budgets are wall
seconds per run (scaled by --scale); a run stops early at its goal on holdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

import gymnasium as gym

import scriptrl

#: env -> (goal on holdout, wall-second budget per run)
SUITE = {
    "CartPole-v1": (500.0, 180),
    "Acrobot-v1": (-90.0, 240),
    "MountainCar-v0": (-110.0, 240),
    "LunarLander-v3": (200.0, 300),
    "FrozenLake8x8-v1": (0.80, 240),
}


def steps_to_goal(run_dir: Path, goal: float) -> int | None:
    """Search env steps spent before the first promotion whose holdout met the goal."""
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        promos = db.execute(
            "select id, created, data from events where kind='promotion' order by id"
        ).fetchall()
        for _, created, data in promos:
            if json.loads(data).get("holdout", float("-inf")) >= goal:
                steps = db.execute(
                    "select coalesce(sum(env_steps),0) from evaluations where stage in ('cheap','full')"
                    " and created <= ?",
                    (created,),
                ).fetchone()[0]
                tune = db.execute(
                    "select data from events where kind='tune' and created <= ?", (created,)
                ).fetchall()
                return int(steps) + sum(json.loads(d).get("env_steps", 0) for (d,) in tune)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default=",".join(SUITE))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every wall-second budget")
    ap.add_argument("--out", default="benchmarks/learning.json")
    args = ap.parse_args()
    rows = []
    root = Path(tempfile.mkdtemp(prefix="scriptrl-bench-"))
    for env in args.envs.split(","):
        goal, budget = SUITE[env]
        for seed in (int(s) for s in args.seeds.split(",")):
            t0 = time.perf_counter()
            run = scriptrl.train(
                env,
                run_dir=str(root / f"{env}-{seed}"),
                seed=seed,
                target=goal,
                max_seconds=budget * args.scale,
            )
            row = {
                "env": env,
                "seed": seed,
                "goal": goal,
                "holdout": run.best_holdout,
                "audit": run.best_audit,
                "dev": run.best_dev,
                "search_env_steps": run.env_steps,
                "eval_env_steps": run.eval_env_steps,
                "steps_to_goal": steps_to_goal(run.run_dir, goal),
                "wall_s": round(time.perf_counter() - t0, 1),
                "iterations": run.iterations,
                "stop": run.stop_reason,
                "best_source": run.best_source,
            }
            rows.append(row)
            print(
                f"{env:<18} seed {seed}  holdout {row['holdout']!s:>9}  steps {row['search_env_steps']:>9,}"
                f"  to goal {row['steps_to_goal']!s:>9}  {row['wall_s']:>6}s  {row['stop']}",
                flush=True,
            )
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "gymnasium": gym.__version__,
        "scriptrl": scriptrl.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "scale": args.scale,
        "load_at_end": os.getloadavg(),
    }
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out} (run folders under {root})")


if __name__ == "__main__":
    main()
