"""Is a run's reported holdout what its champion really scores? (issue 13, "no overfitting")

Usage: python benchmarks/holdout_check.py RUN_DIR [RUN_DIR ...] [--episodes 50] [--out FILE.json]

For each run folder: the champion's source, its stored holdout mean, and a fresh score on
``--episodes`` training-stream seeds the run never drew (they start at the run's saved stream
position, so no selection, race or tuning generation ever saw them). The check passes when the
holdout mean lies inside the fresh score's 95 % CI: selection on the stream did not fit the
episodes it was selected on, and holdout is a fair estimate of what the program does on new
episodes. A holdout far above the fresh score would mean holdout itself was selected on (it
only confirms); far below, that the stream is not the distribution holdout comes from.

Evaluation runs in the real sandbox, in this process's worker pool; nothing is written to the run.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from scriptrl.evaluate import EvalConfig, evaluate
from scriptrl.search.config import TrainConfig
from scriptrl.search.loop import success_env
from scriptrl.store import RunStore


@dataclass
class Check:
    run_dir: str
    env: str
    champion: int
    holdout: float
    fresh_mean: float
    fresh_ci95: tuple[float, float]
    fresh_seeds: tuple[int, int]
    within: bool


def check_run(run_dir: str, episodes: int) -> Check:
    with RunStore.open(run_dir) as store:
        state = store.load_state() or {}
        champ = state.get("champion")
        if not champ:
            raise SystemExit(f"{run_dir}: the run has no champion yet (let it confirm one on holdout)")
        cfg = TrainConfig.from_dict(store.config)
        source = store.program(int(champ["id"]))["source"]
        position = int(state.get("stream") or 0)
    # 1000 episodes past the saved position: a margin for races run after the last save (a killed run)
    seeds = cfg.splits().train(position + 1000, episodes)
    res = evaluate(source, success_env(cfg), seeds, EvalConfig(allow_module_state=cfg.allow_module_state))
    lo, hi = res.ci95
    holdout = float(champ["holdout"])
    return Check(
        run_dir,
        cfg.env,
        int(champ["id"]),
        holdout,
        res.mean,
        (lo, hi),
        (seeds[0], seeds[-1]),
        lo <= holdout <= hi,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--out", default=str(Path(__file__).with_name("holdout_check.json")))
    args = ap.parse_args(argv)
    checks = [check_run(r, args.episodes) for r in args.runs]
    print("| run | env | champion | holdout | fresh stream mean [95 % CI] | holdout within CI |")
    print("|---|---|---|---|---|---|")
    for c in checks:
        print(
            f"| {c.run_dir} | {c.env} | {c.champion} | {c.holdout:.2f} | {c.fresh_mean:.2f} "
            f"[{c.fresh_ci95[0]:.2f}, {c.fresh_ci95[1]:.2f}] | {'yes' if c.within else 'NO'} |"
        )
    Path(args.out).write_text(json.dumps([asdict(c) for c in checks], indent=2))
    return 0 if all(c.within for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
