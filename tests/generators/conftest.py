"""Fixtures of the generator tests: a generator's view of an environment, and a check that one of
our own generated programs acts validly on real observations.

Generated programs are run in-process here: they are programs this package wrote (never a
model's reply), and running them directly keeps these files fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pytest
from gymnasium import spaces

from scriptrl.envs import resolve_env
from scriptrl.generators import GenContext


@functools.cache
def _context(env_id: str = "CartPole-v1") -> GenContext:
    return GenContext.for_env(resolve_env(env_id))


@functools.cache
def _observations(env_id: str, n: int = 10) -> tuple:
    """Real observations from resets and random steps."""
    env = resolve_env(env_id).make()
    env.action_space.seed(0)
    out = []
    obs, _ = env.reset(seed=0)
    out.append(obs)
    step = 0
    while len(out) < n and step < 400:
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        step += 1
        if step % 5 == 0:
            out.append(obs)
        if term or trunc:
            obs, _ = env.reset(seed=step)
            out.append(obs)
    env.close()
    return tuple(out)


def _action_ok(space: spaces.Space, a) -> bool:
    if isinstance(space, spaces.Discrete):
        return type(a) is int and space.contains(a)
    if not isinstance(a, list | tuple | np.ndarray):
        return False
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape != space.shape or not np.all(np.isfinite(arr)):
        return False
    return bool(np.all(arr >= space.low) and np.all(arr <= space.high))


def _acts_validly(source: str, env_id: str) -> None:
    ns: dict = {}
    exec(compile(source, "policy.py", "exec"), ns)
    space = _context(env_id).action_space
    act = ns.get("policy")
    if act is None:  # a phase machine: class Policy with reset(seed) and act(obs)
        instance = ns["Policy"]()
        instance.reset(0)
        act = instance.act
    for obs in _observations(env_id):
        a = act(obs)
        assert _action_ok(space, a), f"invalid action {a!r} for {space} from\n{source}"


@pytest.fixture(scope="session")
def context() -> Callable[..., GenContext]:
    """``context(env_id="CartPole-v1")``: the generator's view of that environment, one per id."""
    return _context


@pytest.fixture(scope="session")
def acts_validly() -> Callable[[str, str], None]:
    """``acts_validly(source, env_id)``: run the program on real observations of that environment
    and fail on the first action its action space does not contain (or a non-finite one)."""
    return _acts_validly
