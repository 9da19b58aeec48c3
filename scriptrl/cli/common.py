"""What the commands share: the parser that reports errors in one line, argument types, the
policy-file arguments and loading, and JSON output."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, NoReturn

#: The object ``add_subparsers`` returns, that every command module adds its parser to.
Subcommands = argparse._SubParsersAction


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


def _success_rate(text: str) -> float:
    """A success rate as a fraction (0.95) or a percentage (95%)."""
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw.rstrip("%").strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a rate; write 0.95 or 95%") from None
    value = value / 100 if percent else value
    if not math.isfinite(value) or not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"a success rate is in (0, 1] (or 1%..100%), got {text}")
    return value


def _success_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--success",
        metavar="EXPR",
        help="what counts as a successful episode, replacing the description's, e.g. "
        '"not final.crashed and mean.speed >= 20" (names: episode_return, length, terminated, '
        "truncated, last_reward, final.KEY and mean.KEY of the step info)",
    )


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, tuple | set):
        return list(o)
    return str(o)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_json_default) + "\n")


def _load_policy(args: argparse.Namespace):
    """The policy file and environment for explain/verify/render, checked the way `eval` checks them."""
    from scriptrl.envs import resolve_env
    from scriptrl.program import Program

    program = Program.from_file(args.policy)
    allow_state = bool(getattr(args, "allow_module_state", False))
    if not args.unsafe_in_process:
        program.validate(allow_module_state=allow_state)
    if allow_state:
        for warning in program.module_state():
            sys.stderr.write(f"scriptrl: warning (--allow-module-state): {warning}\n")
    env = resolve_env(args.env, imports=args.imports or (), options=_env_options(args))
    if env.notice:
        sys.stderr.write(f"scriptrl: {env.notice}\n")
    return program, env


def _policy_arguments(p: argparse.ArgumentParser) -> None:
    _policy_and_env_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    _unsafe_argument(p)


def _policy_and_env_arguments(p: argparse.ArgumentParser) -> None:
    """The policy file and the environment it runs in, as every command that runs one takes them."""
    p.add_argument("policy", help="Python file defining policy(obs) or class Policy")
    p.add_argument("--env", required=True, help="gymnasium id, or package.module:ClassName")
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="import MODULE first (it may register env ids)",
    )
    _env_option_arguments(p)


def _unsafe_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--unsafe-in-process",
        action="store_true",
        help="run a TRUSTED file in this process, with no sandbox (for debugging your own code)",
    )


def _env_options(args: argparse.Namespace) -> dict:
    from scriptrl.envs import options

    return options.gather(getattr(args, "env_options_file", None), getattr(args, "env_option", None) or ())


def _env_option_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--env-option",
        action="append",
        metavar="KEY=VALUE",
        help="a make-time option of the environment (JSON value; dotted keys nest: config.lanes_count=4)",
    )
    p.add_argument(
        "--env-options",
        dest="env_options_file",
        metavar="FILE.toml",
        help="make-time options of the environment from a TOML file (--env-option wins)",
    )


def _allow_module_state_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-module-state",
        action="store_true",
        help="run a program that keeps state at module level between calls, with a warning "
        "(its score may depend on which episodes run together; prefer class Policy)",
    )
