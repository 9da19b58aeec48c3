"""DAgger with VIPER's weighting: imitate the teacher on the states the *student* visits.

Plain imitation (fit the teacher's own trajectories once) fails the moment the student
drifts somewhere the teacher never went, because nobody told it what to do there. DAgger
(Ross et al. 2011) fixes that: iteration 0 plays the teacher, every later iteration plays the
current student, asks the teacher what it would have done in each visited state, adds those
labels to the dataset and refits. VIPER (Bastani et al. 2018) weights each state by how much
the choice matters there (``Teacher.importance``), so the tree spends its few nodes where a
wrong action costs return. The student kept is the one with the best mean return on fresh
training-stream episodes (never holdout), as VIPER picks its policy by reward, not by accuracy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from scriptrl.distill.rollouts import EnvPool, play
from scriptrl.distill.teacher import Teacher
from scriptrl.distill.tree import Node, TreeSettings, fit_tree
from scriptrl.seeds import SeedSplits

#: Largest dataset refitted (a uniform subsample beyond it), so late iterations stay bounded.
MAX_SAMPLES = 80_000


@dataclass(frozen=True)
class DaggerSettings:
    iterations: int = 8
    episodes: int = 20  # played per iteration
    score_episodes: int = 20  # fresh episodes each student is scored on
    weighting: str = "viper"  # or "uniform"
    tree: TreeSettings = TreeSettings()


@dataclass
class IterationRecord:
    iteration: int
    samples: int
    score: float  # mean return of this iteration's student on its scoring episodes
    agreement: float  # fraction of the student's visited states where it acts as the teacher
    leaves: int


@dataclass
class DaggerOutcome:
    tree: Node
    score: float
    iterations: list[IterationRecord] = field(default_factory=list)
    episodes: int = 0
    env_steps: int = 0
    stream_used: int = 0  # training-stream episodes drawn (the next stage starts after them)


def dagger(
    teacher: Teacher, pool: EnvPool, settings: DaggerSettings, deadline: float, stream_start: int = 0
) -> DaggerOutcome:
    """Fit, play, relabel, refit; the best-scoring student of all iterations."""
    splits = SeedSplits()
    rng = np.random.default_rng(stream_start + 7)
    pos = stream_start
    first = play(pool, [teacher.act], splits.train(pos, settings.episodes), record=True)
    pos += settings.episodes
    xs, steps, episodes = [first.visited[0]], first.steps, settings.episodes
    best: DaggerOutcome | None = None
    records: list[IterationRecord] = []
    for it in range(settings.iterations):
        x = np.concatenate(xs)
        if len(x) > MAX_SAMPLES:
            x = x[rng.choice(len(x), MAX_SAMPLES, replace=False)]
        y = teacher.act(x)
        w = teacher.importance(x) if settings.weighting == "viper" else None
        if w is not None and not np.any(w > 0):
            w = None
        tree = fit_tree(x, y, w, teacher.n_actions, settings.tree)
        seeds = splits.train(pos, settings.score_episodes)
        pos += settings.score_episodes
        res = play(pool, [tree.predict], seeds, record=True)
        steps += res.steps
        episodes += settings.score_episodes
        visited = res.visited[0]
        agree = float(np.mean(tree.predict(visited) == teacher.act(visited))) if len(visited) else 0.0
        score = float(res.returns.mean())
        records.append(IterationRecord(it, len(x), score, agree, tree.leaves()))
        if best is None or score > best.score:
            best = DaggerOutcome(tree, score)
        xs.append(visited)  # the student's own states, labelled by the teacher next round
        if time.monotonic() > deadline:
            break
    assert best is not None
    best.iterations, best.episodes, best.env_steps, best.stream_used = records, episodes, steps, pos
    return best
