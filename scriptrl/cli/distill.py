"""``scriptrl distill RUN_DIR``: a baseline run's network distilled into a readable tree program."""

from __future__ import annotations

import argparse
import sys

from scriptrl.cli.common import Subcommands, _positive_float, _positive_int, print_json


def cmd_distill(args: argparse.Namespace) -> int:
    from scriptrl.distill import DistillSettings, distill_run
    from scriptrl.distill.dagger import DaggerSettings
    from scriptrl.distill.tree import TreeSettings

    settings = DistillSettings(
        dagger=DaggerSettings(
            iterations=args.iterations,
            episodes=args.episodes,
            score_episodes=args.episodes,
            weighting=args.weighting,
            tree=TreeSettings(max_depth=args.max_depth, max_terms=args.max_terms, oblique=args.max_terms > 1),
        ),
        tune_evaluations=args.tune_evaluations,
        tune_episodes=args.tune_episodes,
        max_seconds=args.max_seconds,
        seed=args.seed,
    )
    quiet = args.json or not sys.stderr.isatty()
    result = distill_run(args.run_dir, args.output, settings, None if quiet else _progress)
    if args.json:
        print_json(result.summary())
        return 0
    sys.stdout.write(result.source.rstrip("\n") + "\n\n")
    t, s = result.teacher_holdout, result.student_holdout
    sys.stdout.write(f"holdout (seeds {s.seeds}, {s.episodes} episodes, sandboxed evaluator):\n")
    sys.stdout.write(
        f"  {'teacher':>8}: {t.mean:9.2f}  95% CI [{t.ci95[0]:.2f}, {t.ci95[1]:.2f}]  {result.teacher}\n"
    )
    sys.stdout.write(
        f"  {'program':>8}: {s.mean:9.2f}  95% CI [{s.ci95[0]:.2f}, {s.ci95[1]:.2f}]  "
        f"{result.leaves} leaves, depth {result.depth}, {result.lines} lines ({result.code_lines} of code)\n"
    )
    sys.stdout.write(f"program: {result.program}\nsummary: {result.summary_path}\n")
    return 0


def _progress(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def add_distill(sub: Subcommands) -> None:
    p = sub.add_parser(
        "distill", help="turn a neural baseline run into a readable decision-tree program (DAgger + CMA-ES)"
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder made by `scriptrl baseline`")
    p.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="folder for policy.py and summary.json (default RUN_DIR/distill)",
    )
    p.add_argument("--iterations", type=_positive_int, default=8, help="DAgger iterations (default 8)")
    p.add_argument(
        "--episodes", type=_positive_int, default=20, help="episodes played per iteration (default 20)"
    )
    p.add_argument(
        "--max-depth", type=_positive_int, default=4, help="tree depth (default 4: about 40 lines at most)"
    )
    p.add_argument(
        "--max-terms",
        type=_positive_int,
        default=3,
        help="observations in one split; 1 = axis-aligned (default 3)",
    )
    p.add_argument(
        "--weighting", choices=["viper", "uniform"], default="viper", help="state weights (default viper)"
    )
    p.add_argument(
        "--tune-evaluations",
        type=int,
        default=800,
        metavar="N",
        help="CMA-ES candidates after DAgger (0: none)",
    )
    p.add_argument(
        "--tune-episodes", type=_positive_int, default=10, help="fresh episodes per CMA-ES generation"
    )
    p.add_argument(
        "--max-seconds", type=_positive_float, default=900.0, help="time for DAgger and tuning (default 900)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--json", action="store_true", help="print one JSON summary instead of the program and table"
    )
    p.set_defaults(func=cmd_distill)
