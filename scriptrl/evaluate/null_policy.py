"""Doing nothing as the floor of a failed episode: the null action of a space and its return."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from scriptrl.envs import ResolvedEnv
from scriptrl.evaluate.config import EvalConfig
from scriptrl.evaluate.results import Episode


def null_action(space: gymnasium.Space) -> Any:
    """What "doing nothing" means for a space: the first discrete action, or zeros clipped into range."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return int(space.start)
    if isinstance(space, spaces.Box):
        return np.clip(np.zeros(space.shape), space.low, space.high).astype(space.dtype)
    if isinstance(space, spaces.MultiDiscrete | spaces.MultiBinary):
        return np.zeros(space.shape, dtype=space.dtype)
    return None


def _null_return(env: gymnasium.Env, seed: int, cap: int | None) -> tuple[float, int]:
    """Return and length of one episode that always plays the null action."""
    action = null_action(env.action_space)
    env.reset(seed=seed)
    ret, steps = 0.0, 0
    if action is None:
        return ret, steps
    while cap is None or steps < cap:
        _, r, term, trunc, _ = env.step(action)
        ret += float(r)
        steps += 1
        if term or trunc:
            break
    return ret, steps


def _cap_failures(renv: ResolvedEnv, episodes: list[Episode], config: EvalConfig) -> int:
    """A failed episode scores the lower of what it earned before failing and what doing
    nothing scores on the same seed. Failing then never pays: a policy that crashes at step 0
    would otherwise score 0 on Pendulum (honest ones score about -1200), and one that crashes
    late would keep most of a CartPole episode."""
    failed = [ep for ep in episodes if ep.end == "failure"]
    if not failed:
        return 0
    cap = renv.max_episode_steps or config.step_cap
    steps = 0
    for ep in failed:
        env = renv.make()  # one per seed, like the episodes themselves
        try:
            ep.null_return, n = _null_return(env, ep.seed, cap)
        finally:
            env.close()
        ep.ret = min(ep.ret, ep.null_return)
        steps += n
    return steps
