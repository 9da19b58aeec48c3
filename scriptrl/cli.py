"""Command-line parsing only: every command calls the same API a user imports.

Bad input ends in one line on stderr naming the problem and the fix, exit status 2,
and never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from scriptrl.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, tuple | set):
        return list(o)
    return str(o)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_json_default) + "\n")


def cmd_eval(args: argparse.Namespace) -> int:
    from scriptrl.envs import resolve_env
    from scriptrl.evaluate import EvalConfig, SeedSplits, evaluate
    from scriptrl.program import Program
    from scriptrl.report.terminal import print_eval_result

    program = Program.from_file(args.policy)
    if not args.unsafe_in_process:
        program.validate()
    env = resolve_env(args.env, imports=args.imports or ())
    if env.notice:
        sys.stderr.write(f"scriptrl: {env.notice}\n")
    seeds = SeedSplits().seeds(args.split, args.episodes)
    config = EvalConfig(unsafe_in_process=args.unsafe_in_process, episode_timeout=args.episode_timeout)
    result = evaluate(program, env, seeds, config, split=args.split)
    if args.json:
        d = result.to_dict(with_episodes=False)
        d["episodes"] = len(result.returns)
        d["episode_digests"] = [ep.__dict__ for ep in result.episodes]
        print_json(d)
    else:
        print_eval_result(result)
    return 0


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

    from scriptrl.report.terminal import make_console

    table = Table(title="Built-in environment descriptions (any other gymnasium id works too)")
    for col in ("id", "observation", "actions", "time limit", "solved at", "title"):
        table.add_column(col)
    for d in descs:
        obs = f"{len(d.observation)} {d.observation_kind}"
        table.add_row(d.id, obs, f"{len(d.actions)} {d.action_kind}", str(d.time_limit or "-"),
                      "-" if d.solved_threshold is None else f"{d.solved_threshold:g}", d.title)  # fmt: skip
    make_console().print(table)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from scriptrl.sandbox.doctor import run_doctor

    return run_doctor(json_output=args.json)


def cmd_train(args: argparse.Namespace) -> int:
    from scriptrl.search import train

    options = {k: getattr(args, k) for k in ("generator", "run_dir", "init", "target", "max_iterations",
               "max_env_steps", "max_seconds", "max_cost", "seed", "workers", "temperature", "model",
               "base_url", "task")}  # fmt: skip
    options["imports"] = tuple(args.imports or ())
    if args.resume and args.env:
        raise UserError("give either ENV_ID or --resume RUN_DIR, not both")
    quiet = args.json or not sys.stdout.isatty()
    if quiet:
        result = train(args.env, resume=args.resume, **options)
    else:
        from scriptrl.report.progress import LiveProgress

        with LiveProgress(args.env or str(args.resume), args.target) as progress:
            result = train(args.env, resume=args.resume, progress=progress, **options)
    if args.json:
        print_json(result.summary())
        return 0
    from scriptrl.report.terminal import print_train_result

    print_train_result(result)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scriptrl.report.runs_view import print_runs

    print_runs(Path(args.root), json_output=args.json)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scriptrl.report.runs_view import print_show

    print_show(Path(args.run_dir), n=args.top, json_output=args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scriptrl", description="Reinforcement learning where the policy is a readable Python program.")
    from scriptrl import __version__

    parser.add_argument("--version", action="version", version=f"scriptrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("eval", help="evaluate a policy file in the sandbox on a seed split")
    p.add_argument("policy", help="Python file defining policy(obs) or class Policy")
    p.add_argument("--env", required=True, help="gymnasium id, or package.module:ClassName")
    p.add_argument("--import", dest="imports", action="append", metavar="MODULE", help="import MODULE first (it may register env ids)")
    p.add_argument("--split", default="holdout", choices=["dev", "holdout", "audit"])
    p.add_argument("--episodes", type=_positive_int, help="number of episodes (default: the whole split)")
    p.add_argument("--episode-timeout", type=_positive_float, default=120.0, help="wall seconds per episode")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--unsafe-in-process", action="store_true",
                   help="run a TRUSTED file in this process, with no sandbox (for debugging your own code)")  # fmt: skip
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="learn a policy program for an environment (the main job)")
    p.add_argument("env", nargs="?", metavar="ENV_ID", help="gymnasium id, or package.module:ClassName")
    p.add_argument("--generator", default="offline", choices=["offline", "llm", "auto"])
    p.add_argument("--run-dir", help="folder for this run (default: runs/ENV-TIMESTAMP)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run after a crash, kill or Ctrl-C")
    p.add_argument("--init", metavar="POLICY.py", help="start the search from your own program")
    p.add_argument("--target", type=float, help="stop when the holdout mean reaches this (default: solved threshold)")
    p.add_argument("--max-iterations", type=_positive_int)
    p.add_argument("--max-env-steps", type=_positive_int)
    p.add_argument("--max-seconds", type=_positive_float)
    p.add_argument("--max-cost", type=_positive_float, help="US dollars of model calls")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=_positive_int, help="parallel evaluator processes (default: one per core)")
    p.add_argument("--temperature", help="adaptive (default), a number, fixed:T or anneal:HI:LO")
    p.add_argument("--model", help="language model name (llm generator)")
    p.add_argument("--base-url", help="OpenAI-compatible server URL (llm generator)")
    p.add_argument("--task", help="natural-language task description for the first programs (llm generator)")
    p.add_argument("--import", dest="imports", action="append", metavar="MODULE")
    p.add_argument("--json", action="store_true", help="last line of stdout: a JSON summary")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("runs", help="list runs under a folder")
    p.add_argument("root", nargs="?", default="runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("show", help="top programs of a run and the source of its best")
    p.add_argument("run_dir")
    p.add_argument("--top", type=_positive_int, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("envs", help="list built-in environment descriptions, or show one")
    p.add_argument("env", nargs="?", help="show this environment's description")
    p.add_argument("--import", dest="imports", action="append", metavar="MODULE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_envs)

    p = sub.add_parser("doctor", help="report which sandbox isolation layers work on this machine")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)
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
