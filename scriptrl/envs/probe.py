"""Typical observation ranges of an environment nobody has described, measured by playing it.

A generated description only knows the observation space's bounds, and those are often far from
what the numbers really do (a velocity declared in +-20 that stays within +-1). The search takes
its constants' step sizes and its first programs' weights from these ranges, so bounds 20 times too
wide make CMA-ES crawl. A few episodes with random actions, played here in the trusted process
on the environment only (no program runs), give the range the numbers actually take.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from scriptrl.envs.description import EnvDescription

#: Seeds of the probe's episodes: fixed, so a description is the same in every process.
PROBE_SEEDS = (0, 1, 2, 3, 4)
PROBE_STEPS = 2000  # at most, over all probe episodes
PROBE_SECONDS = 1.0  # at most: a slow simulator gets a shorter probe, never a slow start


def measured_ranges(make: Callable[[], Any], seconds: float = PROBE_SECONDS) -> np.ndarray | None:
    """Per-component (low, high) over random-action episodes, widened by a quarter of the span
    on each side (a good policy goes where random actions rarely do); None when the observation
    is not a flat Box or the environment fails to play."""
    env = make()
    try:
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            return None
        seen: list[np.ndarray] = []
        started = time.monotonic()
        for seed in PROBE_SEEDS:
            obs, _ = env.reset(seed=seed)
            env.action_space.seed(seed)
            seen.append(np.asarray(obs, dtype=np.float64))
            done = False
            while not done and len(seen) < PROBE_STEPS and time.monotonic() - started < seconds:
                obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
                seen.append(np.asarray(obs, dtype=np.float64))
                done = terminated or truncated
        data = np.stack(seen)
    except Exception:  # an environment that cannot be played at random keeps its space bounds
        return None
    finally:
        env.close()
    if not np.all(np.isfinite(data)):
        return None
    low, high = data.min(axis=0), data.max(axis=0)
    signed = (low < 0) & (high > 0)
    pad = 0.25 * (high - low)
    low, high = low - pad, high + pad
    flat = high - low <= 0  # a constant component: a unit range around it
    low, high = np.where(flat, low - 0.5, low), np.where(flat, high + 0.5, high)
    # A signed number (an error, a velocity) keeps 0 as its centre: random actions drift one way
    # (a heater switched on at random warms the room), and a generator centres its first rules on
    # the middle of the range, so a lopsided range would centre them on the drift.
    reach = np.maximum(-low, high)
    low, high = np.where(signed, -reach, low), np.where(signed, reach, high)
    # never wider than the space says
    return np.stack([np.maximum(low, space.low), np.minimum(high, space.high)], axis=1)


def with_measured_ranges(desc: EnvDescription, make: Callable[[], Any]) -> EnvDescription:
    """The generated description with the typical ranges measured, and a prompt that says so."""
    if not desc.generated or desc.observation_kind != "vector":
        return desc
    ranges = measured_ranges(make)
    if ranges is None or len(ranges) != len(desc.observation):
        return desc
    comps = tuple(
        dataclasses.replace(c, low=round(float(lo), 4), high=round(float(hi), 4))
        for c, (lo, hi) in zip(desc.observation, ranges, strict=True)
    )
    note = (
        f" Typical ranges were measured from {len(PROBE_SEEDS)} episodes with random actions"
        " (widened by a quarter on each side); a good policy may leave them."
    )
    return dataclasses.replace(desc, observation=comps, summary=desc.summary + note)
