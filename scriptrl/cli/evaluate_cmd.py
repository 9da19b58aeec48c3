"""``scriptrl eval``: score a policy file in the sandbox on a seed split."""

from __future__ import annotations

import argparse
import sys

from scriptrl.cli.common import (
    Subcommands,
    _allow_module_state_argument,
    _load_policy,
    _policy_and_env_arguments,
    _positive_float,
    _positive_int,
    _success_argument,
    _unsafe_argument,
    print_json,
)


def cmd_eval(args: argparse.Namespace) -> int:
    from scriptrl.envs import with_success
    from scriptrl.evaluate import EvalConfig, SeedSplits, evaluate
    from scriptrl.glassbox.report.terminal import print_eval_result

    program, env = _load_policy(args)
    env = with_success(env, args.success)
    seeds = SeedSplits().seeds(args.split, args.episodes)
    config = EvalConfig(
        unsafe_in_process=args.unsafe_in_process,
        episode_timeout=args.episode_timeout,
        allow_module_state=args.allow_module_state,
    )
    result = evaluate(program, env, seeds, config, split=args.split)
    failed = bool(result.episodes) and all(ep.end == "failure" for ep in result.episodes)
    if args.json:
        d = result.to_dict(with_episodes=False)
        d["episodes"] = len(result.returns)
        d["failed"] = failed
        d["episode_digests"] = [ep.__dict__ for ep in result.episodes]
        print_json(d)
    else:
        print_eval_result(result)
        if failed:
            reason = result.failures[0]["reason"] if result.failures else "unknown"
            sys.stdout.write(
                f"FAILED: the program failed every episode, so the mean is no score (first: {reason})\n"
            )
    return 1 if failed else 0


def add_eval(sub: Subcommands) -> None:
    p = sub.add_parser("eval", help="evaluate a policy file in the sandbox on a seed split")
    _policy_and_env_arguments(p)
    p.add_argument("--split", default="holdout", choices=["dev", "holdout", "audit"])
    p.add_argument("--episodes", type=_positive_int, help="number of episodes (default: the whole split)")
    p.add_argument("--episode-timeout", type=_positive_float, default=120.0, help="wall seconds per episode")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _success_argument(p)
    _unsafe_argument(p)
    _allow_module_state_argument(p)
    p.set_defaults(func=cmd_eval)
