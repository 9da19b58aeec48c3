"""A tiny environment for tests of custom (module:Class) and import-registered environments.

Importing this module registers ``ScriptrlCorridor-v0``, the way a user's package would
register its own ids when named with ``--import``.
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

CORRIDOR_ID = "ScriptrlCorridor-v0"


class Corridor(gymnasium.Env):
    """Walk right along a short corridor to the exit."""

    metadata = {"render_modes": []}
    # Read by scriptrl.envs for classes used as module:Class, which have no registry spec.
    max_episode_steps = 25
    reward_threshold = 0.5

    def __init__(self, length: int = 10, render_mode: str | None = None):
        self.length = length
        self.render_mode = render_mode
        self.observation_space = spaces.Box(
            low=np.array([0.0, -1.0], dtype=np.float32),
            high=np.array([float(length), np.inf], dtype=np.float32),
        )
        self.action_space = spaces.Discrete(2)
        self.position = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.position, 0.0], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = 0
        return self._obs(), {}

    def step(self, action):
        self.position = max(0, self.position + (1 if action == 1 else -1))
        done = self.position >= self.length
        return self._obs(), 1.0 if done else 0.0, done, False, {}


if CORRIDOR_ID not in gymnasium.registry:
    gymnasium.register(
        id=CORRIDOR_ID, entry_point=f"{__name__}:Corridor", max_episode_steps=30, reward_threshold=0.9
    )
