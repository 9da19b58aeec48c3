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
    from scriptrl.evaluate import EvalConfig, SeedSplits, evaluate
    from scriptrl.report.terminal import print_eval_result

    program, env = _load_policy(args)
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


def cmd_doctor(args: argparse.Namespace) -> int:
    from scriptrl.sandbox.doctor import run_doctor

    return run_doctor(json_output=args.json, fork_server=not args.spawn)


def cmd_train(args: argparse.Namespace) -> int:
    from scriptrl.search import train

    options = {
        k: getattr(args, k)
        for k in (
            "generator",
            "run_dir",
            "init",
            "target",
            "max_iterations",
            "max_env_steps",
            "max_seconds",
            "max_cost",
            "seed",
            "workers",
            "temperature",
            "model",
            "base_url",
            "task",
            "executor",
            "ray_address",
            "api_key_env",
            "llm_timeout",
            "llm_concurrency",
            "llm_max_tokens",
            "allow_module_state",
        )
    }
    options["imports"] = tuple(args.imports or ())
    options["env_options"] = _env_options(args)
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


def cmd_compare(args: argparse.Namespace) -> int:
    from scriptrl.compare import compare, plot, print_compare

    rows = compare(args.run_dirs, threshold=args.threshold)
    if args.output:
        plot(rows, args.output)
    print_compare(rows, json_output=args.json)
    if args.output and not args.json:
        sys.stdout.write(f"curves: {args.output}\n")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    from scriptrl.models import DEFAULT_MODEL, list_models, pull

    if args.action == "pull":
        path = pull(args.name or DEFAULT_MODEL, say=lambda msg: sys.stderr.write(msg + "\n"))
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


def cmd_report(args: argparse.Namespace) -> int:
    from scriptrl.report.html import write_report

    out = write_report(args.run_dir, args.output, baselines=args.baselines or [])
    sys.stdout.write(f"{out}\n")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from scriptrl.trace import explain, print_explanation

    program, env = _load_policy(args)
    ex = explain(
        program,
        env,
        seed=args.seed,
        episodes=args.episodes,
        log=args.log,
        unsafe_in_process=args.unsafe_in_process,
    )
    if args.json:
        print_json(ex.to_dict())
    else:
        print_explanation(ex)
        if args.log:
            sys.stdout.write(f"decision log: {args.log} ({ex.decisions:,} lines)\n")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from scriptrl.verify import print_verify_report, private_hypothesis_storage, verify

    if args.prove or args.properties:
        return _cmd_prove(args)
    private_hypothesis_storage()
    program, env = _load_policy(args)
    levels = tuple(args.noise) if args.noise else None
    report = verify(
        program,
        env,
        seed=args.seed,
        examples=args.examples,
        time_limit=args.time_limit_ms / 1000.0,
        episodes=args.episodes,
        min_retention=args.min_retention,
        robustness=not args.no_robustness,
        unsafe_in_process=args.unsafe_in_process,
        gate=args.gate,
        max_seconds=args.max_seconds,
        **({"noise_levels": levels} if levels else {}),
    )
    if args.json:
        print_json(report.to_dict())
    else:
        print_verify_report(report)
    return 0 if report.passed and report.complete else 1 if not report.passed else 3


def _cmd_prove(args: argparse.Namespace) -> int:
    """``verify --prove``: exit 0 when every property is proved, 1 when one is refuted, 3 when one is unknown."""
    from scriptrl.prove import print_proof_report, prove, require_z3
    from scriptrl.prove.properties import (
        Property,
        PropertySet,
        check_expression,
        load_properties,
        parse_range,
    )

    require_z3()
    pset = load_properties(args.properties) if args.properties else PropertySet()
    for expr in args.prove or []:
        check_expression(expr, "--prove")
        pset.properties.append(Property(expr, expr))
    pset.ranges = pset.ranges + tuple(parse_range(r) for r in args.ranges or [])
    program, env = _load_policy(args)
    report = prove(program, env, pset, unsafe=args.unsafe_in_process, max_seconds=args.prove_seconds)
    if args.json:
        print_json(report.to_dict())
    else:
        print_proof_report(report)
    return report.exit_code


def cmd_diff(args: argparse.Namespace) -> int:
    from scriptrl.behaviour_diff import behaviour_diff, print_diff
    from scriptrl.program import Program
    from scriptrl.prove.properties import parse_range

    ranges = tuple(parse_range(r) for r in args.ranges or [])
    args.policy = args.policy_a
    a, env = _load_policy(args)
    b = Program.from_file(args.policy_b)
    if not args.unsafe_in_process:
        b.validate()
    if a.name == b.name:
        b = Program(b.source, name=f"{b.name} (B)")
    report = behaviour_diff(
        a,
        b,
        env,
        episodes=args.episodes,
        samples=args.samples,
        ranges=ranges,
        prove=not args.no_prove,
        max_seconds=args.prove_seconds,
        unsafe=args.unsafe_in_process,
    )
    if args.json:
        print_json(report.to_dict())
    else:
        print_diff(report)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from scriptrl.export import export_policy

    out = export_policy(
        args.run_dir, args.output, program_id=args.program, shield=args.shield, fallback=args.fallback
    )
    sys.stdout.write(f"{out}\n")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from scriptrl.render import render_episode

    program, env = _load_policy(args)
    info = render_episode(
        program,
        env,
        args.output,
        seed=args.seed,
        every=args.every,
        scale=args.scale,
        unsafe_in_process=args.unsafe_in_process,
    )
    if args.json:
        print_json(info)
    else:
        sys.stdout.write(
            f"{info['path']}: {info['frames']} frames, return {info['return']:.2f} over {info['length']} steps"
            f" ({info['end']}{': ' + info['reason'] if info['reason'] else ''})\n"
        )
    return 0


def _policy_arguments(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="scriptrl", description="Reinforcement learning where the policy is a readable Python program."
    )
    from scriptrl import __version__

    parser.add_argument("--version", action="version", version=f"scriptrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("eval", help="evaluate a policy file in the sandbox on a seed split")
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
    p.add_argument("--split", default="holdout", choices=["dev", "holdout", "audit"])
    p.add_argument("--episodes", type=_positive_int, help="number of episodes (default: the whole split)")
    p.add_argument("--episode-timeout", type=_positive_float, default=120.0, help="wall seconds per episode")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--unsafe-in-process",
        action="store_true",
        help="run a TRUSTED file in this process, with no sandbox (for debugging your own code)",
    )
    _allow_module_state_argument(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="learn a policy program for an environment (the main job)")
    p.add_argument("env", nargs="?", metavar="ENV_ID", help="gymnasium id, or package.module:ClassName")
    p.add_argument("--generator", default="offline", choices=["offline", "llm", "auto"])
    p.add_argument("--run-dir", help="folder for this run (default: runs/ENV-TIMESTAMP)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run after a crash, kill or Ctrl-C")
    p.add_argument("--init", metavar="POLICY.py", help="start the search from your own program")
    p.add_argument(
        "--target", type=float, help="stop when the holdout mean reaches this (default: solved threshold)"
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
        help="local: a process pool on this machine (default); ray: a Ray cluster (pip install 'scriptrl[ray]')",
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
    p.add_argument(
        "--llm-timeout", type=_positive_float, metavar="SECONDS", help="seconds for one model request"
    )
    p.add_argument(
        "--llm-concurrency", type=_positive_int, metavar="N", help="model requests in flight at once"
    )
    p.add_argument(
        "--llm-max-tokens", type=_positive_int, metavar="N", help="most tokens a model reply may have"
    )
    p.add_argument("--import", dest="imports", action="append", metavar="MODULE")
    _env_option_arguments(p)
    _allow_module_state_argument(p)
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

    p = sub.add_parser("model", help="local language models for --generator llm: list them, or fetch one")
    p.add_argument("action", choices=["list", "pull"])
    p.add_argument(
        "name", nargs="?", help="model to pull (default: the default model; see `scriptrl model list`)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("envs", help="list built-in environment descriptions, or show one")
    p.add_argument("env", nargs="?", help="show this environment's description")
    p.add_argument("--import", dest="imports", action="append", metavar="MODULE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_envs)

    p = sub.add_parser("doctor", help="report which sandbox isolation layers work on this machine")
    p.add_argument("--json", action="store_true")
    p.add_argument("--spawn", action="store_true", help="probe a spawned worker instead of the fork server")
    p.set_defaults(func=cmd_doctor)

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
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "explain", help="which lines of a policy ran, and which line and conditions chose each action"
    )
    _policy_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="first episode seed (episodes use SEED, SEED+1, ...)")
    p.add_argument("--episodes", type=_positive_int, default=10)
    p.add_argument(
        "--log", metavar="decisions.jsonl", help="write every step: observation, action, line, conditions"
    )
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "verify",
        help="property-based checks of a policy, then a robustness gate, or proofs of stated "
        "properties (exit 0 pass/proved, 1 fail/refuted, 3 not finished/unknown)",
    )
    _policy_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="seed for the generated observations")
    p.add_argument("--examples", type=_positive_int, default=60, help="batches of observations per property")
    p.add_argument("--time-limit-ms", type=_positive_float, default=20.0, help="limit for one policy call")
    p.add_argument("--episodes", type=_positive_int, default=20, help="episodes per robustness condition")
    p.add_argument(
        "--noise",
        type=_positive_float,
        action="append",
        metavar="FRACTION",
        help="observation noise level as a fraction of each component's range (repeatable)",
    )
    p.add_argument(
        "--min-retention",
        type=float,
        default=0.75,
        help="share of the clean score margin over a random policy to keep (default 0.75; below it is a"
        " warning unless --gate)",
    )
    p.add_argument(
        "--gate", action="store_true", help="fail when a robustness condition is below --min-retention"
    )
    p.add_argument(
        "--max-seconds",
        type=_positive_float,
        default=120.0,
        help="wall-clock limit for the whole run (default 120); what did not finish is reported",
    )
    p.add_argument("--no-robustness", action="store_true", help="run the property checks only")
    p.add_argument(
        "--prove",
        action="append",
        metavar="EXPR",
        help='prove a property over obs and action instead of sampling, e.g. "action != 2 or obs[0] < 0"'
        " (repeatable; exit 0 proved, 1 refuted, 3 unknown)",
    )
    p.add_argument(
        "--properties", metavar="FILE.toml", help="properties to prove: [[property]] name, expr, ranges"
    )
    p.add_argument(
        "--range",
        dest="ranges",
        action="append",
        metavar="I=LOW:HIGH",
        help="prove over obs[I] in [LOW, HIGH] (default: the space's bound, else the description's range)",
    )
    p.add_argument(
        "--prove-seconds", type=_positive_float, default=60.0, help="time limit for the solver (default 60)"
    )
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "diff", help="where and how often two versions of a policy act differently, and the score change"
    )
    p.add_argument("policy_a", metavar="A.py")
    p.add_argument("policy_b", metavar="B.py")
    p.add_argument("--env", required=True, metavar="ID")
    p.add_argument("--import", dest="imports", action="append", metavar="MODULE")
    p.add_argument("--episodes", type=_positive_int, default=20, help="holdout episodes (default 20)")
    p.add_argument(
        "--samples", type=_positive_int, default=2000, help="observations drawn in the box (default 2000)"
    )
    p.add_argument(
        "--range", dest="ranges", action="append", metavar="I=LOW:HIGH", help="box range for obs[I]"
    )
    p.add_argument("--no-prove", action="store_true", help="skip the solver (sampling and holdout only)")
    p.add_argument("--prove-seconds", type=_positive_float, default=60.0, help="time limit for the solver")
    p.add_argument(
        "--unsafe-in-process", action="store_true", help="run trusted files in this process (no sandbox)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_diff)

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

    p = sub.add_parser("render", help="an animated GIF of one episode of a policy")
    _policy_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True, metavar="episode.gif")
    p.add_argument("--every", type=_positive_int, default=1, help="keep every N-th frame")
    p.add_argument("--scale", type=_positive_float, default=1.0, help="resize frames by this factor")
    p.set_defaults(func=cmd_render)
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
