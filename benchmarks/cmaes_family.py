"""CMA-ES on the constants of one offline-generator program family for a Box-action environment.

Usage: python benchmarks/cmaes_family.py --env ENV [--family linear|abs|target|switch|full]
       [--start zero|random] [--scales unit|tuner] [--max-steps N] [--max-seconds S] [--popsize P]
       [--episodes 5] [--seed 0] [--workers 2] [--report-every 5] [--out FILE.json]

Which family can a constant search alone tune to a good score? The program is the offline
generator's full-state feedback law (``scriptrl.generators.offline.feedback``) with the chosen
optional parts (``linear``: none; ``abs``: abs of the rate-paired positions; ``target``: abs plus
one clipped intermediate; ``switch``: abs plus a second law while a flag reading is set;
``full``: all three), written by the generator itself from the description. Everything else is
``cmaes_lunarlander.py``'s loop: ``ConstantSearch``, the same fresh training-stream episodes for a
whole generation, the real sandbox through the local executor pool, monitoring rows on 25
episodes far along the training stream and the final holdout, none of which count as search steps.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

from cmaes_lunarlander import Run  # type: ignore[import-not-found]  # the sibling benchmark's loop

from scriptrl.envs import resolve_env
from scriptrl.evaluate.executors import LocalExecutor
from scriptrl.generators.base import GenContext
from scriptrl.generators.layout import layout_for
from scriptrl.generators.offline import EnvView, OfflineMutator
from scriptrl.generators.offline.feedback import FeedbackShape, feedback_box
from scriptrl.generators.tuning import ConstantTuner, extract_constants
from scriptrl.search.cmaes import CmaSettings, ConstantSearch

FAMILIES = {
    "linear": FeedbackShape(absolute=False, target=False, switch=False),
    "abs": FeedbackShape(absolute=True, target=False, switch=False),
    "target": FeedbackShape(absolute=True, target=True, switch=False),
    "switch": FeedbackShape(absolute=True, target=False, switch=True),
    "full": FeedbackShape(absolute=True, target=True, switch=True),
}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="LunarLanderContinuous-v3")
    ap.add_argument("--family", choices=sorted(FAMILIES), default="linear")
    ap.add_argument("--start", choices=("zero", "random"), default="zero")
    ap.add_argument("--scales", choices=("unit", "tuner"), default="unit")
    ap.add_argument("--max-steps", type=int, default=1_500_000, help="search env steps (monitoring apart)")
    ap.add_argument("--max-seconds", type=float, default=None, help="also stop the search after this long")
    ap.add_argument("--popsize", type=int, default=None, help="default: pycma's for the constant count")
    ap.add_argument("--episodes", type=int, default=5, help="fresh episodes per generation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--report-every", type=int, default=5, help="generations between monitoring rows")
    ap.add_argument("--out", default="/tmp/cmaes_family.json")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    resolved = resolve_env(args.env)
    ctx = GenContext.for_env(resolved)
    env = EnvView(layout_for(ctx))
    body, note = feedback_box(env, random.Random(args.seed), 0.5, FAMILIES[args.family], args.start == "zero")
    source = OfflineMutator()._finish(env, body)
    x0 = extract_constants(source)
    scales = ConstantTuner().scales(ctx, source) if args.scales == "tuner" else [1.0] * len(x0)
    settings = CmaSettings(popsize=args.popsize, episodes_per_generation=args.episodes)
    search = ConstantSearch(x0, scales, seed=args.seed, settings=settings, max_evaluations=10**9)
    args.popsize = search.popsize
    run = Run(args, source, search, LocalExecutor(args.workers), resolved)
    print(source)
    print(f"{args.env} {note}: {len(x0)} constants, popsize {search.popsize}, load {os.getloadavg()}")
    out, h_best, h_mean = run.finish()
    out["meta"].update(env=args.env, family=args.family, start=args.start, scales=args.scales)
    out["source"] = source
    print(run.holdout_line(h_best, h_mean))
    Path(args.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
