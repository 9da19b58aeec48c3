"""Neural baselines (Stable-Baselines3 with rl-baselines3-zoo hyperparameters), stored as runs.

A baseline run lives in the same run-folder format as ``scriptrl train`` and is scored by
the same evaluator on the same seed splits, so ``scriptrl runs``, ``show`` and ``compare``
treat it like any other run. Needs the ``scriptrl[baselines]`` extra (torch, SB3); this
module imports neither until a baseline is actually trained.

>>> run = scriptrl.baselines.train_baseline("CartPole-v1", "ppo", max_seconds=120)
>>> run.best_holdout
"""

from __future__ import annotations

from scriptrl.baselines.zoo import ALGOS, ZooEntry, zoo_entry

__all__ = ["ALGOS", "ZooEntry", "train_baseline", "zoo_entry"]


def train_baseline(*args, **kwargs):
    """See ``scriptrl.baselines.train.train_baseline``; imported lazily so the listing commands stay light."""
    from scriptrl.baselines.train import train_baseline as _train

    return _train(*args, **kwargs)
