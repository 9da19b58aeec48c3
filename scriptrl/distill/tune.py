"""Tuning the distilled tree's numbers for reward with the search's CMA-ES (``search/cmaes.py``).

Imitation copies the teacher's choices, not its return: a threshold a little off where the
teacher's decision boundary is curved costs reward the imitation loss never sees. So after
DAgger the tree's thresholds and (non-leading) split coefficients are tuned by the same ask/tell
CMA-ES the search uses, each generation scored on its own fresh training-stream episodes shared
by the whole population (common random numbers). The tree is kept as our numpy object while
tuning (played in-process by ``rollouts.play``); only the final rendered program is scored by
the sandboxed evaluator. Numbers are rounded to ``DIGITS`` significant digits, the precision the
rendered program is written with, so the tree scored here is exactly the program rendered.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scriptrl.distill.rollouts import EnvPool, play
from scriptrl.distill.tree import Node
from scriptrl.search.cmaes import CmaSettings, optimize
from scriptrl.seeds import SeedSplits

#: Significant digits of every number in the rendered program.
DIGITS = 4


def _leading(weights: np.ndarray) -> int:
    """The coefficient fixed at ±1 (the first largest); tuning the others covers every direction."""
    return int(np.argmax(np.abs(weights)))


def parameters(root: Node) -> tuple[list[float], list[float]]:
    """The tunable numbers (per split: threshold, then its other non-zero coefficients) and step sizes."""
    x0: list[float] = []
    scales: list[float] = []
    for node in root.internal():
        assert node.weights is not None
        x0.append(node.threshold)
        scales.append(0.5 * max(node.spread, 1e-3))
        lead = _leading(node.weights)
        for i in np.flatnonzero(node.weights):
            if i != lead:
                x0.append(float(node.weights[i]))
                scales.append(0.5 * max(abs(float(node.weights[i])), 0.1))
    return x0, scales


def with_parameters(root: Node, x: list[float]) -> Node:
    """A copy of ``root`` carrying the numbers ``x`` (in ``parameters`` order)."""
    out = copy.deepcopy(root)
    k = 0
    for node in out.internal():
        assert node.weights is not None
        node.threshold = float(x[k])
        k += 1
        lead = _leading(node.weights)
        w = node.weights.copy()
        for i in np.flatnonzero(node.weights):
            if i != lead:
                w[i] = float(x[k])
                k += 1
        node.weights = w
    return out


def rounded(root: Node) -> Node:
    """The tree with every number at the precision the rendered program writes it."""
    x0, _ = parameters(root)
    out = with_parameters(root, [_round(v) for v in x0])
    for node in out.internal():
        assert node.weights is not None
        node.weights = np.array([_round(v) for v in node.weights])
    return out


def _round(v: float) -> float:
    return float(f"{float(v):.{DIGITS}g}")


def _report(search, progress: Callable[[str], None] | None) -> bool:
    """A progress line every 10 generations (returns False: it never stops the search)."""
    if progress is not None and search.generations % 10 == 0 and search.history:
        last = search.history[-1]
        progress(
            f"  tuning: {search.evaluations} candidates, generation best {last.best:.2f}, "
            f"best so far {last.best_so_far:.2f} "
            f"(on {search.settings.episodes_per_generation} fresh episodes)"
        )
    return False


@dataclass
class TuneOutcome:
    tree: Node
    before: float  # the untuned tree's mean on the confirmation episodes
    after: float  # the kept tree's mean on them
    evaluations: int
    generations: int
    episodes: int
    env_steps: int
    stopped: str


def tune_tree(
    root: Node,
    pool: EnvPool,
    *,
    seed: int,
    stream_start: int,
    episodes_per_generation: int,
    max_evaluations: int,
    confirm_episodes: int,
    deadline: float,
    progress: Callable[[str], None] | None = None,
) -> TuneOutcome:
    """CMA-ES on the tree's numbers; the untuned tree, the ES mean and the best told race on fresh
    confirmation episodes and the best of them is kept (so tuning never makes the tree worse there)."""
    x0, scales = parameters(root)
    splits = SeedSplits()
    steps = 0
    if not x0 or max_evaluations < 2:
        return TuneOutcome(rounded(root), float("nan"), float("nan"), 0, 0, 0, 0, "nothing to tune")

    def evaluate(xs: list[list[float]], seeds: list[int]) -> list[float]:
        nonlocal steps
        trees = [rounded(with_parameters(root, x)) for x in xs]
        res = play(pool, [t.predict for t in trees], seeds)
        steps += res.steps
        return [float(r) for r in res.returns.mean(axis=1)]

    def seeds_for(g: int) -> list[int]:
        return splits.train(stream_start + g * episodes_per_generation, episodes_per_generation)

    outcome = optimize(
        x0,
        scales,
        evaluate,
        seed=seed,
        settings=CmaSettings(episodes_per_generation=episodes_per_generation),
        max_evaluations=max_evaluations,
        seeds_for_generation=seeds_for,
        on_generation=lambda search: _report(search, progress) or time.monotonic() > deadline,
    )
    used = stream_start + (outcome.generations + 1) * episodes_per_generation
    confirm = splits.train(used, confirm_episodes)
    candidates = [rounded(root), rounded(with_parameters(root, outcome.mean))]
    if outcome.best_score > float("-inf"):
        candidates.append(rounded(with_parameters(root, outcome.best)))
    res = play(pool, [t.predict for t in candidates], confirm)
    steps += res.steps
    means = res.returns.mean(axis=1)
    k = int(np.argmax(means))
    return TuneOutcome(
        candidates[k],
        float(means[0]),
        float(means[k]),
        outcome.evaluations,
        outcome.generations,
        outcome.episodes + len(candidates) * confirm_episodes,
        steps,
        outcome.stopped,
    )
