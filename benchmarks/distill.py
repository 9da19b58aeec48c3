"""Distilling PPO baselines into tree programs: holdout score of the program beside its teacher's.

Usage: python benchmarks/distill.py [--case Acrobot-v1 --case LunarLander-v3] [--run-dir ENV=DIR ...]
       [--runs-root runs] [--max-depth D] [--tune-evaluations N] [--max-seconds S] [--out FILE.json]

For each case it uses the given baseline run (``--run-dir Acrobot-v1=runs/acro-ppo``) or trains one
with ``scriptrl baseline`` (PPO, rl-baselines3-zoo hyperparameters; the budget and target of
``CASES``), then runs ``scriptrl distill`` on it and reports both holdout scores (seeds 1000-1049,
the sandboxed evaluator, same seeds), the program's size and the time and env steps distillation
took. Issue 16's targets: Acrobot-v1 a program of at most 40 lines scoring >= -90; LunarLander-v3
one scoring >= 200. The machine's load (``os.getloadavg``) is recorded with every row: these
machines are shared and times drift with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from scriptrl.distill import DistillSettings, distill_run
from scriptrl.distill.dagger import DaggerSettings
from scriptrl.distill.tree import TreeSettings

#: Per environment: the baseline's training budget and stopping target, and issue 16's goal.
CASES = {
    "Acrobot-v1": {"max_env_steps": 200_000, "target": -72.0, "goal": -90.0, "max_lines": 40, "depth": 4},
    "LunarLander-v3": {
        "max_env_steps": 1_000_000,
        "target": 260.0,
        "goal": 200.0,
        "max_lines": None,
        "depth": 5,
    },
}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="environments (default: both)")
    ap.add_argument(
        "--run-dir", action="append", default=[], metavar="ENV=DIR", help="an existing baseline run"
    )
    ap.add_argument("--runs-root", default="runs", help="where baselines are trained when no run is given")
    ap.add_argument("--max-depth", type=int, default=None, help="tree depth (default: the case's)")
    ap.add_argument("--max-terms", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=8)
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--tune-evaluations", type=int, default=1200)
    ap.add_argument("--tune-episodes", type=int, default=10)
    ap.add_argument("--max-seconds", type=float, default=1200.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/distill.json")
    return ap.parse_args()


def baseline_run(env: str, args: argparse.Namespace, given: dict[str, str]) -> tuple[Path, float | None]:
    """The baseline run folder (given, or trained now) and the training wall seconds if trained here."""
    if env in given:
        return Path(given[env]), None
    from scriptrl.baselines import train_baseline

    case = CASES[env]
    t0 = time.perf_counter()
    run = train_baseline(
        env,
        "ppo",
        run_dir=Path(args.runs_root) / f"{env}-ppo-distill-{time.strftime('%Y%m%d-%H%M%S')}",
        max_env_steps=case["max_env_steps"],
        target=case["target"],
        seed=args.seed,
    )
    return run.run_dir, round(time.perf_counter() - t0, 1)


def one_case(env: str, args: argparse.Namespace, given: dict[str, str]) -> dict:
    run_dir, trained_s = baseline_run(env, args, given)
    case = CASES[env]
    settings = DistillSettings(
        dagger=DaggerSettings(
            iterations=args.iterations,
            episodes=args.episodes,
            score_episodes=args.episodes,
            tree=TreeSettings(max_depth=args.max_depth or case["depth"], max_terms=args.max_terms),
        ),
        tune_evaluations=args.tune_evaluations,
        tune_episodes=args.tune_episodes,
        max_seconds=args.max_seconds,
        seed=args.seed,
    )
    load_before = os.getloadavg()
    res = distill_run(run_dir, Path(args.out).with_suffix("") / env, settings, progress=print)
    ok = res.student_holdout.mean >= case["goal"] and (
        case["max_lines"] is None or res.lines <= case["max_lines"]
    )
    return {
        "env": env,
        "run_dir": str(run_dir),
        "baseline_train_seconds": trained_s,
        "teacher": res.teacher,
        "teacher_holdout": res.teacher_holdout.mean,
        "teacher_ci95": res.teacher_holdout.ci95,
        "program_holdout": res.student_holdout.mean,
        "program_ci95": res.student_holdout.ci95,
        "lines": res.lines,
        "code_lines": res.code_lines,
        "leaves": res.leaves,
        "depth": res.depth,
        "goal": case["goal"],
        "max_lines": case["max_lines"],
        "meets_goal": ok,
        "distill_seconds": res.details["seconds"],
        "distill_env_steps": res.details["training_env_steps"],
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "program": str(res.program),
        "source": res.source,
    }


def main() -> None:
    args = parse_args()
    given = dict(item.split("=", 1) for item in args.run_dir)
    rows = [one_case(env, args, given) for env in (args.case or list(CASES))]
    print()
    print(
        f"{'env':<16} {'teacher':>9} {'program':>9} {'goal':>7} {'lines':>5} "
        f"{'leaves':>6} {'secs':>6} {'load':>5}  ok"
    )
    for r in rows:
        print(
            f"{r['env']:<16} {r['teacher_holdout']:9.2f} {r['program_holdout']:9.2f} {r['goal']:7.0f} "
            f"{r['lines']:5d} {r['leaves']:6d} {r['distill_seconds']:6.0f} {r['load_after'][0]:5.1f}  "
            f"{'yes' if r['meets_goal'] else 'NO'}"
        )
    out = {
        "rows": rows,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%F %T"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
