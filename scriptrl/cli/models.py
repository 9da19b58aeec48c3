"""``scriptrl model``: the local language models for ``--generator llm``."""

from __future__ import annotations

import argparse
import sys

from scriptrl.cli.common import Subcommands, print_json


def _say(msg: str) -> None:
    sys.stderr.write(msg + "\n")


def cmd_model(args: argparse.Namespace) -> int:
    from scriptrl.generators.llm.weights import DEFAULT_MODEL, list_models, pull

    if args.action == "pull":
        path = pull(args.name or DEFAULT_MODEL, say=_say)
        if args.json:
            print_json({"name": args.name or DEFAULT_MODEL, "path": str(path)})
        else:
            sys.stdout.write(f"{path}\n")
        return 0
    rows = list_models()
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        flag = "cached" if r["cached"] else "not fetched"
        default = " (default)" if r["default"] else ""
        sys.stdout.write(
            f"{r['name']}{default}: {r['params']} {r['quant']}, {r['bytes'] / 1e6:,.0f} MB, {flag}\n"
            f"    {r['note']}\n    {r['path']}\n"
        )
    return 0


def add_model(sub: Subcommands) -> None:
    p = sub.add_parser("model", help="local language models for --generator llm: list them, or fetch one")
    p.add_argument("action", choices=["list", "pull"])
    p.add_argument(
        "name", nargs="?", help="model to pull (default: the default model; see `scriptrl model list`)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_model)
