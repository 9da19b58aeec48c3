"""``scriptrl train``: the search, with options named as ``TrainConfig`` names them."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from scriptrl.cli.common import (
    Subcommands,
    _allow_module_state_argument,
    _env_option_arguments,
    _env_options,
    _positive_float,
    _positive_int,
    _success_argument,
    _success_rate,
    print_json,
)
from scriptrl.errors import UserError

#: ``TrainConfig`` fields the command fills in itself: the positional id, and values that need
#: converting (the repeatable --import, the --env-option/--env-options pair).
_CONVERTED = ("env", "imports", "env_options")


def _config_options(args: argparse.Namespace) -> list[str]:
    """The ``TrainConfig`` fields that have an option of the same dest: read from the config, so
    a new field gets through as soon as the parser has a flag for it."""
    from scriptrl.search.config import TrainConfig

    given = vars(args)
    return [f.name for f in dataclasses.fields(TrainConfig) if f.name in given and f.name not in _CONVERTED]


def cmd_train(args: argparse.Namespace) -> int:
    from scriptrl.search import train

    options = {k: getattr(args, k) for k in _config_options(args)}
    options["imports"] = tuple(args.imports or ())
    options["env_options"] = _env_options(args)
    if args.resume and args.env:
        raise UserError("give either ENV_ID or --resume RUN_DIR, not both")
    quiet = args.json or not sys.stdout.isatty()
    if quiet:
        result = train(args.env, resume=args.resume, **options)
    else:
        from scriptrl.glassbox.report.progress import LiveProgress

        with LiveProgress(args.env or str(args.resume), args.target) as progress:
            result = train(args.env, resume=args.resume, progress=progress, **options)
    if args.json:
        print_json(result.summary())
        return 0
    from scriptrl.glassbox.report.terminal import print_train_result

    print_train_result(result)
    return 0


def add_train(sub: Subcommands) -> None:
    p = sub.add_parser("train", help="learn a policy program for an environment (the main job)")
    p.add_argument("env", nargs="?", metavar="ENV_ID", help="gymnasium id, or package.module:ClassName")
    p.add_argument("--generator", default="offline", choices=["offline", "llm", "auto"])
    p.add_argument("--run-dir", help="folder for this run (default: runs/ENV-TIMESTAMP)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run after a crash, kill or Ctrl-C")
    p.add_argument("--init", metavar="POLICY.py", help="start the search from your own program")
    p.add_argument(
        "--target", type=float, help="stop when the holdout mean reaches this (default: solved threshold)"
    )
    p.add_argument(
        "--target-success",
        type=_success_rate,
        metavar="RATE",
        help="stop when the holdout success rate reaches RATE (0.95 or 95%%); with --target, both must",
    )
    _success_argument(p)
    p.add_argument(
        "--no-evolution",
        dest="evolve",
        action="store_false",
        default=None,
        help="the first programs only: no generator writes a child after them, every round tunes "
        "their constants (CMA-ES); a language model writes first programs only (an ablation)",
    )
    p.add_argument("--max-iterations", type=_positive_int)
    p.add_argument("--max-env-steps", type=_positive_int)
    p.add_argument("--max-seconds", type=_positive_float)
    p.add_argument("--max-cost", type=_positive_float, help="US dollars of model calls")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--workers",
        type=_positive_int,
        help="parallel evaluators (default: one per core; with --executor ray, one per cluster CPU)",
    )
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        help=(
            "local: a process pool on this machine (default);"
            " ray: a Ray cluster (pip install 'scriptrl[ray]')"
        ),
    )
    p.add_argument(
        "--ray-address", metavar="HOST:PORT", help="a running Ray head (`ray start --head` prints it)"
    )
    p.add_argument("--temperature", help="adaptive (default), a number, fixed:T or anneal:HI:LO")
    p.add_argument(
        "--model",
        help="llm generator: a local model (`scriptrl model list`), a served model's name "
        "with --base-url, or an LLM config file (.toml)",
    )
    p.add_argument(
        "--base-url", help="OpenAI-compatible server URL (llm generator); without it the model runs locally"
    )
    p.add_argument("--task", help="natural-language task description for the first programs (llm generator)")
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="name of the environment variable holding the API key "
        "(default OPENAI_API_KEY; the key itself is never stored)",
    )
    _model_schedule_arguments(p)
    p.add_argument("--import", dest="imports", action="append", metavar="MODULE")
    _env_option_arguments(p)
    _allow_module_state_argument(p)
    p.add_argument("--json", action="store_true", help="last line of stdout: a JSON summary")
    p.set_defaults(func=cmd_train)


def _model_schedule_arguments(p) -> None:
    """How model requests are made and scheduled (llm generator)."""
    p.add_argument(
        "--llm-timeout", type=_positive_float, metavar="SECONDS", help="seconds for one model request"
    )
    p.add_argument(
        "--llm-concurrency", type=_positive_int, metavar="N", help="model requests in flight at once"
    )
    p.add_argument(
        "--llm-max-tokens", type=_positive_int, metavar="N", help="most tokens a model reply may have"
    )
    p.add_argument(
        "--llm-round-seconds",
        type=_positive_float,
        metavar="SECONDS",
        help="most seconds a slow model writes per round (default 60); the offline mutator writes "
        "the children it has no time for",
    )
    p.add_argument(
        "--llm-rounds",
        dest="model_lane",
        action="store_false",
        default=None,
        help="the model writes each round's children and the round waits for it (the schedule before "
        "the model lane; default: the model writes beside the search and its programs join as they arrive)",
    )
