"""Does the search improve a strong program it is started from? (issue 13, the ``--init`` check)

Usage: python benchmarks/init_improves.py ENV=POLICY.py [ENV=POLICY.py ...] [--seeds 0,1,2]
           [--seconds 300] [--workers N] [--out benchmarks/init_improves.json]

Why: a user who brings a hand-written controller wants the search to make it better, or to say
it could not, never to hand back a program that scores better on the episodes it was selected
on and worse on new ones. Per pair and search seed this runs ``scriptrl train ENV --init
POLICY`` as a user would (its own process, offline generator) and scores the user's program on
the same holdout episodes with ``scriptrl eval``. It prints a table and writes JSON: the user's
holdout and its 95 % CI, the champion's holdout, the change, and whether the champion is still
the user's program. The controllers we check this on are kept outside this repository.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

CLI = [sys.executable, "-m", "scriptrl"]


@dataclass
class Row:
    env: str
    policy: str
    seed: int
    init_holdout: float
    init_ci95: tuple[float, float]
    champion_holdout: float
    champion_is_init: bool
    env_steps: int
    seconds: float

    @property
    def gain(self) -> float:
        return self.champion_holdout - self.init_holdout


def _last_json(cmd: list[str], timeout: float) -> dict:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        tail = p.stderr.strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"init_improves: {' '.join(cmd[2:4])} failed (exit {p.returncode}): {tail[0]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def holdout_of(env: str, policy: Path) -> dict:
    """The user's program on the holdout episodes: the same for every search seed, so scored once."""
    return _last_json([*CLI, "eval", str(policy), "--env", env, "--json"], timeout=600)


def run_pair(
    env: str, policy: Path, score: dict, seed: int, seconds: float, workers: int | None, runs: Path
) -> Row:
    run_dir = runs / f"{env}-{policy.stem}-s{seed}"
    cmd = [*CLI, "train", env, "--init", str(policy), "--generator", "offline", "--seed", str(seed)]
    cmd += ["--max-seconds", f"{seconds:g}", "--run-dir", str(run_dir), "--json"]
    if workers:
        cmd += ["--workers", str(workers)]
    summary = _last_json(cmd, timeout=seconds + 900)
    best = (run_dir / "best_policy.py").read_text() if (run_dir / "best_policy.py").exists() else ""
    return Row(
        env=env,
        policy=str(policy),
        seed=seed,
        init_holdout=float(score["mean"]),
        init_ci95=tuple(score["ci95"]),
        champion_holdout=float(summary["best_holdout"]),
        champion_is_init=_same_program(best, policy.read_text()),
        env_steps=int(summary.get("env_steps", 0)),
        seconds=float(summary.get("seconds", 0.0)),
    )


def _same_program(best: str, init: str) -> bool:
    """The champion file may carry a header comment; compare the code lines only."""

    def code(s: str) -> list[str]:
        return [ln.rstrip() for ln in s.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]

    return bool(best) and code(init) == code(best)[-len(code(init)) :]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", metavar="ENV=POLICY.py")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/init_improves.json"))
    args = ap.parse_args()
    pairs = []
    for text in args.pairs:
        env, sep, path = text.partition("=")
        if not sep or not Path(path).is_file():
            raise SystemExit(
                f"init_improves: {text!r} is not ENV=POLICY.py with an existing file (e.g. CartPole-v1=pd.py)"
            )
        pairs.append((env, Path(path)))
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="init_improves-") as tmp:
        for env, policy in pairs:
            score = holdout_of(env, policy)
            for seed in seeds:
                row = run_pair(env, policy, score, seed, args.seconds, args.workers, Path(tmp))
                rows.append(row)
                print(
                    f"{env:24} {policy.name:20} seed {seed}: init {row.init_holdout:8.2f} "
                    f"[{row.init_ci95[0]:.1f}, {row.init_ci95[1]:.1f}]  champion {row.champion_holdout:8.2f} "
                    f"({row.gain:+.2f}{', the init itself' if row.champion_is_init else ''})  "
                    f"{row.env_steps:,} steps {row.seconds:.0f} s",
                    flush=True,
                )
    for env, policy in pairs:
        mine = [r for r in rows if r.env == env and r.policy == str(policy)]
        gains = [r.gain for r in mine]
        print(
            f"{env} {policy.name}: median gain {statistics.median(gains):+.2f} over {len(mine)} seeds, "
            f"improved on {sum(r.gain > 0 and not r.champion_is_init for r in mine)}/{len(mine)}"
        )
    args.out.write_text(json.dumps([asdict(r) | {"gain": r.gain} for r in rows], indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
