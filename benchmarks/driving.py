"""The driving case study (issue 17): a learned program on 100 held-out highway scenarios.

Usage:
  python benchmarks/driving.py --policy runs/X/best_policy.py      # score a learned program
  python benchmarks/driving.py --train-seconds 1800                # learn first (offline, seed 0)

It reports, for the program on highway-fast-v0 with the HighwayGaps readings:
- the no-crash rate and the success rate (no crash and mean speed >= the description's floor)
  over 100 held-out scenarios from the holdout split's first seed, with 95 % Wilson intervals,
  the mean return with its 95 % interval, and the same on 100 audit scenarios;
- always-SLOWER on the first held-out scenarios, which shows why success needs the speed floor;
- program lines;
- steps/s: the raw environment (highway-env's own Kinematics observation), the environment
  with the adapter, and scriptrl's sandboxed evaluation (one process, and ``--workers``
  processes at once).

Crashes and speeds are read on the trusted side (``info['crashed']``, the ego vehicle's speed)
by an observer of scriptrl's own episode loop; the program runs in the sandbox as in training.
The machine may be shared: the load average is recorded with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium

from scriptrl.envs import resolve_env
from scriptrl.envs.description import curated_files
from scriptrl.evaluate import EvalConfig, evaluate
from scriptrl.evaluate.observer import run_observed
from scriptrl.program import Program
from scriptrl.seeds import SeedSplits

ENV_ID = "highway-fast-v0"
SPEED_FLOOR = 22.0  # m/s: the floor in the description's `success` expression (checked below)
SLOWER = "def policy(obs):\n    return 4\n"


@dataclass
class Drive:
    seed: int
    ret: float
    steps: int
    crashed: bool
    mean_speed: float

    @property
    def success(self) -> bool:
        return not self.crashed and self.mean_speed >= SPEED_FLOOR


class _Speedometer:
    """Trusted-side observer: the ego vehicle's speed each step and whether it crashed."""

    def __init__(self) -> None:
        self.speeds: dict[int, list[float]] = {}
        self.crashed: dict[int, bool] = {}

    def on_reset(self, episode: int, env: gymnasium.Env) -> None:
        self.speeds[episode], self.crashed[episode] = [], False

    def on_step(self, step, env: gymnasium.Env) -> None:
        vehicle = env.unwrapped.vehicle
        self.speeds[step.episode].append(float(vehicle.speed))
        self.crashed[step.episode] = self.crashed[step.episode] or bool(vehicle.crashed)


def _drive_chunk(source: str, seeds: list[int]) -> tuple[list[dict], float, int]:
    renv = resolve_env(ENV_ID)
    meter = _Speedometer()
    t0 = time.perf_counter()
    episodes, _ = run_observed(Program(source), renv, seeds, EvalConfig(), meter)
    seconds = time.perf_counter() - t0
    out = [
        asdict(
            Drive(ep.seed, ep.ret, ep.length, meter.crashed[i], statistics.fmean(meter.speeds[i] or [0.0]))
        )
        for i, ep in enumerate(episodes)
    ]
    return out, seconds, sum(ep.length for ep in episodes)


def drive(source: str, seeds: list[int], workers: int) -> tuple[list[Drive], float]:
    """Every seed's drive, the seeds split across ``workers`` processes; and aggregate steps/s."""
    chunks = [seeds[i::workers] for i in range(workers) if seeds[i::workers]]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(len(chunks)) as pool:
        parts = list(pool.map(_drive_chunk, [source] * len(chunks), chunks))
    wall = time.perf_counter() - t0
    drives = sorted((Drive(**d) for part in parts for d in part[0]), key=lambda d: d.seed)
    return drives, sum(p[2] for p in parts) / wall


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def summary(drives: list[Drive]) -> dict:
    n = len(drives)
    rets = [d.ret for d in drives]
    mean = statistics.fmean(rets)
    half = 1.96 * statistics.stdev(rets) / math.sqrt(n) if n > 1 else 0.0
    safe = sum(not d.crashed for d in drives)
    ok = sum(d.success for d in drives)
    return {
        "episodes": n,
        "seeds": [drives[0].seed, drives[-1].seed],
        "no_crash_rate": safe / n,
        "no_crash_ci95": wilson(safe, n),
        "success_rate": ok / n,
        "success_ci95": wilson(ok, n),
        "mean_return": mean,
        "return_ci95": (mean - half, mean + half),
        "mean_speed": statistics.fmean(d.mean_speed for d in drives),
        "crashed_seeds": [d.seed for d in drives if d.crashed],
    }


def program_lines(source: str) -> int:
    """Lines of the program itself: without the header comments ``scriptrl train`` writes."""
    lines = source.strip().splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return len("\n".join(lines).strip().splitlines())


def raw_steps_per_second(adapter: bool, episodes: int) -> float:
    """A plain in-process loop, always SLOWER (it never crashes, so every episode is full length)."""
    env = resolve_env(ENV_ID).make() if adapter else gymnasium.make(ENV_ID, disable_env_checker=True)
    steps, t0 = 0, time.perf_counter()
    for seed in range(episodes):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(4)
            steps, done = steps + 1, terminated or truncated
    env.close()
    return steps / (time.perf_counter() - t0)


def train(seconds: int, run_dir: Path) -> Path:
    cmd = [sys.executable, "-m", "scriptrl", "train", ENV_ID, "--generator", "offline", "--seed", "0"]
    cmd += ["--max-seconds", str(seconds), "--run-dir", str(run_dir)]
    subprocess.run(cmd, check=True, timeout=seconds * 3 + 600)
    return run_dir / "best_policy.py"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", type=Path, help="a learned program (e.g. RUN/best_policy.py)")
    ap.add_argument("--train-seconds", type=int, help="learn first: scriptrl train for this long, seed 0")
    ap.add_argument("--run-dir", type=Path, default=Path("runs/driving-benchmark"))
    ap.add_argument("--episodes", type=int, default=100, help="held-out and audit scenarios each")
    ap.add_argument("--baseline-episodes", type=int, default=20, help="always-SLOWER scenarios")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/driving.json"))
    args = ap.parse_args()
    if (args.policy is None) == (args.train_seconds is None):
        ap.error("give exactly one of --policy FILE or --train-seconds N")
    desc = resolve_env(ENV_ID).description
    stated = curated_files()[f"{ENV_ID}.toml"].get("success", "")
    if f"mean.speed >= {SPEED_FLOOR:g}" not in stated:
        sys.exit(f"the description's success {stated!r} no longer states the floor {SPEED_FLOOR:g}")
    policy = args.policy or train(args.train_seconds, args.run_dir)
    source = policy.read_text(encoding="utf-8")
    splits = SeedSplits()
    holdout0, audit0 = splits.range_of("holdout")[0], splits.range_of("audit")[0]
    load_before = os.getloadavg()

    held, held_sps = drive(source, list(range(holdout0, holdout0 + args.episodes)), args.workers)
    audit, _ = drive(source, list(range(audit0, audit0 + args.episodes)), args.workers)
    slower, _ = drive(SLOWER, list(range(holdout0, holdout0 + args.baseline_episodes)), args.workers)
    one = evaluate(Program(source), resolve_env(ENV_ID), list(range(holdout0, holdout0 + 10)), split="custom")
    speeds = {
        "raw_kinematics": raw_steps_per_second(False, 5),
        "raw_with_adapter": raw_steps_per_second(True, 5),
        "scriptrl_one_process": one.env_steps / one.seconds,
        f"scriptrl_{args.workers}_processes": held_sps,
    }
    result = {
        "env": ENV_ID,
        "policy": str(policy),
        "program_lines": program_lines(source),
        "readings": len(desc.observation),
        "speed_floor": SPEED_FLOOR,
        "holdout": summary(held),
        "audit": summary(audit),
        "always_slower": summary(slower),
        "steps_per_second": speeds,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "program": source,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _print(result)


def _print(r: dict) -> None:
    print(f"{r['env']}: {r['policy']} ({r['program_lines']} lines, {r['readings']} readings)")
    print(f"{'scenarios':<22}{'no crash':>22}{'success':>22}{'mean return':>24}{'speed':>8}")
    for key in ("holdout", "audit", "always_slower"):
        s = r[key]
        nc, sc, rc = s["no_crash_ci95"], s["success_ci95"], s["return_ci95"]
        label = f"{key} {s['seeds'][0]}-{s['seeds'][1]}"
        print(
            f"{label:<22}{s['no_crash_rate']:>8.0%} [{nc[0]:.0%},{nc[1]:.0%}]"
            f"{s['success_rate']:>10.0%} [{sc[0]:.0%},{sc[1]:.0%}]"
            f"{s['mean_return']:>10.2f} [{rc[0]:.2f},{rc[1]:.2f}]{s['mean_speed']:>8.1f}"
        )
    print("steps/s: " + ", ".join(f"{k} {v:.1f}" for k, v in r["steps_per_second"].items()))
    la = r["load_average"]
    print(f"load average (1, 5, 15 min): before {la['before']}, after {la['after']}")
    print(f"crashed held-out seeds: {r['holdout']['crashed_seeds']}")


if __name__ == "__main__":
    main()
