"""Commands about this machine and its environments: ``envs`` and ``doctor``."""

from __future__ import annotations

import argparse
import sys

from scriptrl.cli.common import Subcommands, print_json


def cmd_envs(args: argparse.Namespace) -> int:
    from scriptrl.envs import list_descriptions, resolve_env

    if args.env:
        desc = resolve_env(args.env, imports=args.imports or ()).description
        if args.json:
            print_json(desc.to_dict())
        else:
            sys.stdout.write(desc.to_prompt() + "\n")
        return 0
    descs = list_descriptions()
    if args.json:
        print_json([d.to_dict() for d in descs])
        return 0
    from rich.table import Table

    from scriptrl.glassbox.report.terminal import make_console

    table = Table(title="Built-in environment descriptions (any other gymnasium id works too)")
    for col in ("id", "observation", "actions", "time limit", "solved at", "title"):
        table.add_column(col)
    for d in descs:
        obs = f"{len(d.observation)} {d.observation_kind}"
        table.add_row(
            d.id,
            obs,
            f"{len(d.actions)} {d.action_kind}",
            str(d.time_limit or "-"),
            "-" if d.solved_threshold is None else f"{d.solved_threshold:g}",
            d.title,
        )
    make_console().print(table)
    return 0


def add_envs(sub: Subcommands) -> None:
    p = sub.add_parser("envs", help="list built-in environment descriptions, or show one")
    p.add_argument("env", nargs="?", help="show this environment's description")
    p.add_argument("--import", dest="imports", action="append", metavar="MODULE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_envs)


def cmd_doctor(args: argparse.Namespace) -> int:
    from scriptrl.sandbox.doctor import run_doctor

    return run_doctor(json_output=args.json, fork_server=not args.spawn)


def add_doctor(sub: Subcommands) -> None:
    p = sub.add_parser("doctor", help="report which sandbox isolation layers work on this machine")
    p.add_argument("--json", action="store_true")
    p.add_argument("--spawn", action="store_true", help="probe a spawned worker instead of the fork server")
    p.set_defaults(func=cmd_doctor)
