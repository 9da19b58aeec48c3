"""Commands that read a run folder: ``runs``, ``show``, ``compare``, ``report`` and ``export``."""

from __future__ import annotations

import argparse
import sys

from scriptrl.cli.common import Subcommands, _positive_int


def cmd_runs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scriptrl.glassbox.report.runs_view import print_runs

    print_runs(Path(args.root), json_output=args.json)
    return 0


def add_runs(sub: Subcommands) -> None:
    p = sub.add_parser("runs", help="list runs under a folder")
    p.add_argument("root", nargs="?", default="runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)


def cmd_show(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scriptrl.glassbox.report.runs_view import print_show

    print_show(Path(args.run_dir), n=args.top, json_output=args.json)
    return 0


def add_show(sub: Subcommands) -> None:
    p = sub.add_parser("show", help="top programs of a run and the source of its best")
    p.add_argument("run_dir")
    p.add_argument("--top", type=_positive_int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)


def cmd_compare(args: argparse.Namespace) -> int:
    from scriptrl.glassbox.compare import compare, plot, print_compare

    rows = compare(args.run_dirs, threshold=args.threshold)
    if args.output:
        plot(rows, args.output)
    print_compare(rows, json_output=args.json)
    if args.output and not args.json:
        sys.stdout.write(f"curves: {args.output}\n")
    return 0


def add_compare(sub: Subcommands) -> None:
    p = sub.add_parser(
        "compare", help="side-by-side table of runs (scriptrl and baselines); -o draws their curves"
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("-o", "--output", metavar="PLOT.png", help="draw score against env steps and seconds")
    p.add_argument(
        "--threshold", type=float, help="score that counts as solved (default: the env's solved threshold)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)


def cmd_report(args: argparse.Namespace) -> int:
    from scriptrl.glassbox.report.html import write_report

    out = write_report(
        args.run_dir, args.output, baselines=args.baselines or [], crashes=args.crashes, last=args.last
    )
    sys.stdout.write(f"{out}\n")
    return 0


def add_report(sub: Subcommands) -> None:
    p = sub.add_parser("report", help="write one self-contained HTML report of a run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument(
        "-o", "--output", metavar="FILE.html", help="where to write it (default: RUN_DIR/report.html)"
    )
    p.add_argument(
        "--baseline",
        dest="baselines",
        action="append",
        metavar="RUN_DIR",
        help="draw this run's curves on the same axes (repeatable)",
    )
    p.add_argument(
        "--crashes",
        action="store_true",
        help="replay the best program's failed held-out episodes: their last decisions, GIFs of the worst 3",
    )
    p.add_argument(
        "--last", type=_positive_int, default=5, metavar="N", help="decisions shown per failed episode"
    )
    p.set_defaults(func=cmd_report)


def cmd_export(args: argparse.Namespace) -> int:
    from scriptrl.glassbox.export import export_policy

    out = export_policy(
        args.run_dir, args.output, program_id=args.program, shield=args.shield, fallback=args.fallback
    )
    sys.stdout.write(f"{out}\n")
    return 0


def add_export(sub: Subcommands) -> None:
    p = sub.add_parser("export", help="write a run's best program as a standalone file with a policy card")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--output", required=True, metavar="policy.py")
    p.add_argument("--program", type=int, metavar="ID", help="export this program instead of the best one")
    p.add_argument(
        "--shield",
        metavar="PROPERTIES.toml",
        help="wrap the policy in a runtime monitor enforcing these properties (verify --properties format)",
    )
    p.add_argument(
        "--fallback", metavar="ACTION", help="the shield's fallback action (else fallback = ... in the file)"
    )
    p.set_defaults(func=cmd_export)
