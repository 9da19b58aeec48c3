"""``scriptrl baseline``: a neural baseline (Stable-Baselines3) trained and stored as a run."""

from __future__ import annotations

import argparse
import sys

from scriptrl.cli.common import Subcommands, _positive_float, _positive_int, print_json


def cmd_baseline(args: argparse.Namespace) -> int:
    from scriptrl.baselines import train_baseline
    from scriptrl.baselines.train import print_progress

    quiet = args.json or not sys.stderr.isatty()
    result = train_baseline(
        args.env,
        args.algo,
        run_dir=args.run_dir,
        max_env_steps=args.max_env_steps,
        max_seconds=args.max_seconds,
        seed=args.seed,
        target=args.target,
        eval_every=args.eval_every,
        progress=None if quiet else print_progress,
    )
    if args.json:
        print_json(result.summary())
        return 0
    sys.stdout.write(f"stopped: {result.stop_reason}\n")
    for k, v in (
        ("best dev", result.best_dev),
        ("best holdout", result.best_holdout),
        ("audit", result.best_audit),
    ):
        sys.stdout.write(f"{k:>14}: {'-' if v is None else f'{v:.2f}'}\n")
    sys.stdout.write(
        f"{'env steps':>14}: {result.env_steps:,} training + {result.eval_env_steps:,} holdout/audit\n"
    )
    sys.stdout.write(f"{'wall time':>14}: {result.seconds:.1f} s over {result.iterations} checkpoints\n")
    sys.stdout.write(f"{'run folder':>14}: {result.run_dir}\n{'best policy':>14}: {result.best_policy}\n")
    return 0


def add_baseline(sub: Subcommands) -> None:
    p = sub.add_parser(
        "baseline", help="train a neural baseline (Stable-Baselines3, zoo hyperparameters) as a run"
    )
    p.add_argument("env", metavar="ENV_ID", help="gymnasium id")
    p.add_argument("--algo", default="ppo", choices=["ppo", "dqn", "a2c", "sac"])
    p.add_argument("--run-dir", help="folder for this run (default: runs/ENV-ALGO-TIMESTAMP)")
    p.add_argument(
        "--max-env-steps", type=_positive_int, help="training steps (default: the zoo's n_timesteps)"
    )
    p.add_argument("--max-seconds", type=_positive_float, help="seconds of training (measuring not counted)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--target", type=float, help="stop when the holdout mean reaches this (default: solved threshold)"
    )
    p.add_argument(
        "--eval-every", type=_positive_int, metavar="STEPS", help="training steps between curve points"
    )
    p.add_argument("--json", action="store_true", help="last line of stdout: a JSON summary")
    p.set_defaults(func=cmd_baseline)
