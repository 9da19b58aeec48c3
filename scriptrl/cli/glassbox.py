"""Commands that look inside one policy: ``explain``, ``verify`` (and ``--prove``), ``diff``,
``render``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from scriptrl.cli.common import (
    Subcommands,
    _load_policy,
    _policy_arguments,
    _positive_float,
    _positive_int,
    _success_argument,
    print_json,
)
from scriptrl.glassbox.crash_view import DEFAULT_SHOWN
from scriptrl.glassbox.crashes import DEFAULT_LAST, GIF_COUNT


def cmd_explain(args: argparse.Namespace) -> int:
    from scriptrl.envs.success_rule import with_success
    from scriptrl.glassbox.explain_view import print_explanation
    from scriptrl.glassbox.trace import explain

    program, env = _load_policy(args)
    ex = explain(
        program,
        with_success(env, args.success),
        seed=args.seed,
        episodes=args.episodes,
        log=args.log,
        unsafe_in_process=args.unsafe_in_process,
        last=args.last,
        gifs=args.gifs,
    )
    if args.json:
        print_json(ex.to_dict())
    else:
        print_explanation(ex, crashes_shown=args.crashes)
        if args.log:
            sys.stdout.write(f"decision log: {args.log} ({ex.decisions:,} lines)\n")
    return 0


def add_explain(sub: Subcommands) -> None:
    p = sub.add_parser(
        "explain", help="which lines of a policy ran, and which line and conditions chose each action"
    )
    _policy_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="first episode seed (episodes use SEED, SEED+1, ...)")
    p.add_argument("--episodes", type=_positive_int, default=10)
    p.add_argument(
        "--log", metavar="decisions.jsonl", help="write every step: observation, action, line, conditions"
    )
    p.add_argument(
        "--last",
        type=_positive_int,
        default=DEFAULT_LAST,
        metavar="N",
        help=f"decisions shown per failed episode, its last ones (default {DEFAULT_LAST})",
    )
    p.add_argument(
        "--crashes",
        type=_positive_int,
        default=DEFAULT_SHOWN,
        metavar="K",
        help=f"failed episodes shown in the tables, worst first (default {DEFAULT_SHOWN}; --json has all)",
    )
    p.add_argument(
        "--gifs",
        metavar="DIR",
        help=f"render the {GIF_COUNT} worst failed episodes as DIR/seed-<seed>.gif (as `render` does)",
    )
    _success_argument(p)
    p.set_defaults(func=cmd_explain)


def cmd_verify(args: argparse.Namespace) -> int:
    from scriptrl.glassbox.verify import print_verify_report, private_hypothesis_storage, verify

    if args.prove or args.properties:
        return _cmd_prove(args)
    private_hypothesis_storage()
    program, env = _load_policy(args)
    levels = tuple(args.noise) if args.noise else None
    noise: dict[str, Any] = {"noise_levels": levels} if levels else {}
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
        **noise,
    )
    if args.json:
        print_json(report.to_dict())
    else:
        print_verify_report(report)
    return 0 if report.passed and report.complete else 1 if not report.passed else 3


def _cmd_prove(args: argparse.Namespace) -> int:
    """``verify --prove``: exit 0 when every property is proved, 1 when one is refuted, 3 when one is
    unknown."""
    from scriptrl.glassbox.prove import print_proof_report, prove, require_z3
    from scriptrl.glassbox.prove.properties import (
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


def add_verify(sub: Subcommands) -> None:
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


def cmd_diff(args: argparse.Namespace) -> int:
    from scriptrl.glassbox.behaviour_diff import behaviour_diff, print_diff
    from scriptrl.glassbox.prove.properties import parse_range
    from scriptrl.program import Program

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


def add_diff(sub: Subcommands) -> None:
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


def cmd_render(args: argparse.Namespace) -> int:
    from scriptrl.glassbox.render import render_episode

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
            f"{info['path']}: {info['frames']} frames, return {info['return']:.2f}"
            f" over {info['length']} steps ({info['end']}{': ' + info['reason'] if info['reason'] else ''})\n"
        )
    return 0


def add_render(sub: Subcommands) -> None:
    p = sub.add_parser("render", help="an animated GIF of one episode of a policy")
    _policy_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True, metavar="episode.gif")
    p.add_argument("--every", type=_positive_int, default=1, help="keep every N-th frame")
    p.add_argument("--scale", type=_positive_float, default=1.0, help="resize frames by this factor")
    p.set_defaults(func=cmd_render)
