"""Command-line parsing only: every command calls the same API a user imports.

Bad input ends in one line on stderr naming the problem and the fix, exit status 2,
and never a traceback. Each command's parser sits beside its handler in the module named for
it; ``build_parser`` adds them in the order ``--help`` lists them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scriptrl.cli import baseline, distill, envs, evaluate_cmd, glassbox, models, runs, train
from scriptrl.cli.common import _Parser
from scriptrl.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="scriptrl", description="Reinforcement learning where the policy is a readable Python program."
    )
    from scriptrl import __version__

    parser.add_argument("--version", action="version", version=f"scriptrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    evaluate_cmd.add_eval(sub)
    train.add_train(sub)
    runs.add_runs(sub)
    runs.add_show(sub)
    baseline.add_baseline(sub)
    distill.add_distill(sub)
    runs.add_compare(sub)
    models.add_model(sub)
    envs.add_envs(sub)
    envs.add_doctor(sub)
    runs.add_report(sub)
    glassbox.add_explain(sub)
    glassbox.add_verify(sub)
    glassbox.add_diff(sub)
    runs.add_export(sub)
    glassbox.add_render(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        sys.stderr.write(f"scriptrl: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("scriptrl: interrupted\n")
        return 130
