"""Perturbed environments for the robustness gate: observation noise, a longer horizon, changed physics,
and the uniformly random policy every condition is measured against."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np

from scriptrl import seeds
from scriptrl.envs import ResolvedEnv
from scriptrl.errors import UserError

#: Magnitudes are what a controller for the real system should tolerate (tens of percent).
PHYSICS: dict[str, list[tuple[str, dict, dict]]] = {
    "CartPole-v1": [
        ("pole length x0.5", {}, {"length": 0.25}),
        ("pole length x2", {}, {"length": 1.0}),
        ("pole mass x2", {}, {"masspole": 0.2}),
        ("cart mass x1.5", {}, {"masscart": 1.5}),
    ],
    "Acrobot-v1": [
        ("link 1 mass x1.2", {}, {"LINK_MASS_1": 1.2}),
        ("link 2 length x1.2", {}, {"LINK_LENGTH_2": 1.2}),
    ],
    "MountainCar-v0": [
        ("engine force x0.9", {}, {"force": 0.0009}),
        ("gravity x1.05", {}, {"gravity": 0.002625}),
    ],
    "MountainCarContinuous-v0": [("engine power x0.9", {}, {"power": 0.00135})],
    "Pendulum-v1": [
        ("gravity 12", {"g": 12.0}, {}),
        ("mass x1.1", {}, {"m": 1.1}),
        ("length x1.1", {}, {"l": 1.1}),
    ],
    "LunarLander-v3": [
        ("gravity -8", {"gravity": -8.0}, {}),
        ("gravity -11.5", {"gravity": -11.5}, {}),
        ("wind 5 (turbulence 0.5)", {"enable_wind": True, "wind_power": 5.0, "turbulence_power": 0.5}, {}),
    ],
}
PHYSICS["LunarLanderContinuous-v3"] = PHYSICS["LunarLander-v3"]

NOISE_LEVELS = (0.02, 0.05, 0.1)
HOLDOUT_START = seeds.HOLDOUT[0]


# --------------------------------------------------------------------------- perturbed environments


class NoisyObservation(gymnasium.ObservationWrapper):
    """Gaussian noise per component, seeded from the episode seed so a result can be reproduced."""

    def __init__(self, env: gymnasium.Env, sigma: Sequence[float]) -> None:
        super().__init__(env)
        self.sigma = np.asarray(sigma, dtype=np.float64)
        space: Any = env.observation_space  # a Box: noise is only added to continuous observations
        self.low = np.where(np.isfinite(space.low), space.low, -np.inf).astype(np.float64)
        self.high = np.where(np.isfinite(space.high), space.high, np.inf).astype(np.float64)
        self.rng = np.random.default_rng(0)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng([int(seed), 7919])
        return super().reset(seed=seed, options=options)

    def observation(self, observation):
        noisy = (
            np.asarray(observation, dtype=np.float64)
            + self.rng.normal(0.0, 1.0, self.sigma.shape) * self.sigma
        )
        return np.clip(noisy, self.low, self.high).astype(self.observation_space.dtype)


@dataclasses.dataclass(frozen=True)
class PerturbedEnv(ResolvedEnv):
    """A resolved environment whose ``make()`` adds noise, a longer horizon or changed physics.

    ``scriptrl.evaluate`` only calls ``make()`` and reads plain fields, so the evaluator,
    its sandbox and its statistics are used unchanged.
    """

    condition: str = "clean"
    noise: tuple[float, ...] = ()
    attrs: tuple[tuple[str, float], ...] = ()
    extra_kwargs: tuple[tuple[str, Any], ...] = ()
    horizon: int | None = None

    @classmethod
    def of(cls, renv: ResolvedEnv, **changes: Any) -> PerturbedEnv:
        base = {f.name: getattr(renv, f.name) for f in dataclasses.fields(ResolvedEnv)}
        return cls(**base, **changes)

    def label(self) -> str:
        return f"{super().label()} [{self.condition}]"

    def make(self, **extra: Any) -> gymnasium.Env:
        kwargs = {**dict(self.extra_kwargs), **extra}
        if self.horizon:
            kwargs["max_episode_steps"] = self.horizon
        env = super().make(**kwargs)
        u: Any = env.unwrapped  # attributes of the concrete environment class
        for name, value in self.attrs:
            if not hasattr(u, name):
                raise UserError(f"{self.id} has no physical parameter {name!r} to perturb")
            setattr(u, name, value)
        if self.attrs and hasattr(u, "polemass_length"):  # CartPole caches these in __init__
            u.total_mass = u.masspole + u.masscart
            u.polemass_length = u.masspole * u.length
        if self.noise:
            env = NoisyObservation(env, self.noise)
        return env


def _random_rollouts(
    renv: ResolvedEnv, seeds: Sequence[int], max_steps: int = 1000
) -> tuple[list, list[list[float]]]:
    """Observations and per-step rewards of a uniformly random policy: trusted code only."""
    env = renv.make()
    observations, rewards = [], []
    try:
        env.action_space.seed(int(seeds[0]) if seeds else 0)
        for s in seeds:
            o, _ = env.reset(seed=int(s))
            observations.append(o)
            rs: list[float] = []
            for _ in range(max_steps):
                o, r, term, trunc, _ = env.step(env.action_space.sample())
                observations.append(o)
                rs.append(float(r))
                if term or trunc:
                    break
            rewards.append(rs)
    finally:
        env.close()
    return observations, rewards
