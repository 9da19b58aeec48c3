"""Planted fault: non-determinism. Near-ties are broken at random, so the same
observation can give different actions (random is allowed, and seeded per run, but
the policy still depends on more than the observation)."""

import random


def policy(obs):
    position, velocity, angle, angular_velocity = obs
    push = 10.0 * angle + 2.0 * angular_velocity + 0.1 * position + 0.3 * velocity
    if abs(push) < 0.5:
        return random.choice([0, 1])
    return 1 if push > 0 else 0
