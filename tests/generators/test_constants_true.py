"""Only constants that can change an action are tuned or perturbed, and notes count them truly.

Each program below holds live constants (marked ``# live``) and numbers no run can observe:
code after a return, under ``if False:``, a value overwritten before it is read, a variable
nothing reads, a default every call overrides, a function nothing calls, the test of a
branch whose two sides return the same action, a module constant rebound before use.
"""

from __future__ import annotations

import random
import re

import gymnasium

from scriptrl.generators import OfflineMutator, extract_constants, with_constants
from scriptrl.generators.base import ParentInfo
from scriptrl.program import check_source

DEAD = '''"""A CartPole controller with numbers that cannot matter."""

GAIN = 9.75  # rebound below before anything reads it
GAIN = 1.5  # live


def lean(angle, rate, damping=0.625):
    """Every call passes damping: its default is never read."""
    return angle + damping * rate


def unused(x):
    return 7.125 * x


def policy(obs):
    cart_position = obs[0]
    pole_angle = obs[2]
    pole_angular_velocity = obs[3]
    spare = 3.875 * cart_position  # nothing reads spare
    k = 4.25  # overwritten on the next line
    k = 0.05  # live
    score = GAIN * lean(pole_angle, pole_angular_velocity, 0.4) + k * cart_position  # 0.4 live
    if False:
        return 1 if score > 8.5 else 0
    if score > 0.0:  # live
        if cart_position > 6.75:  # both ways the action is 1: the threshold cannot matter
            return 1
        return 1
    return 0
    return 1 if score > 5.5 else 0
'''
LIVE = [1.5, 0.05, 0.4, 0.0]
INERT = ["9.75", "0.625", "7.125", "3.875", "4.25", "8.5", "6.75", "5.5"]


def cartpole_return(source: str, seeds=(0, 1)) -> float:
    """Our own generated program, run in-process on real episodes as the generator tests do."""
    ns: dict = {}
    exec(compile(source, "policy.py", "exec", dont_inherit=True), ns)
    env = gymnasium.make("CartPole-v1")
    total = 0.0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(ns["policy"](obs))
            total += float(r)
            done = term or trunc
    env.close()
    return total / len(seeds)


def inert_kept(source: str) -> bool:
    return all(re.search(rf"(?<![\d.]){re.escape(v)}(?!\d)", source) for v in INERT)


def test_only_live_constants_are_extracted():
    assert check_source(DEAD) == []
    changed = DEAD
    for v in INERT:
        changed = changed.replace(v, "123.0")
    assert cartpole_return(changed) == cartpole_return(DEAD)  # the inert numbers indeed do not matter
    assert extract_constants(DEAD) == LIVE
    new = with_constants(DEAD, [2.0, 0.07, 0.3, 0.01])
    assert inert_kept(new) and "GAIN = 2.0  # live" in new and "k = 0.07  # live" in new


SMALL = [
    (
        "def policy(obs):\n    if obs[0] > 0.5:\n        return 1\n    return 0\n    x = 0.7 * obs[1]\n",
        [0.5],
    ),
    ("def policy(obs):\n    return 1 if obs[1] > 0.3 else 1\n", []),
    ("def policy(obs):\n    if obs[0] > 0.2:\n        return 0\n    else:\n        return 0\n", []),
    (
        "class Policy:\n    SPEED = 0.5\n\n    def reset(self, seed=None):\n        pass\n\n"
        "    def __init__(self):\n        self.g = 0.3\n\n"
        "    def helper(self):\n        return 0.9\n\n    def act(self, obs):\n"
        "        return 1 if self.g * obs[0] > 0.1 else 0\n",
        [0.3, 0.1],
    ),
    (
        "class Policy:\n    SPEED = 0.5\n\n    def reset(self, seed=None):\n        pass\n\n"
        "    def act(self, obs):\n        return 1 if obs[0] > self.SPEED * 0.2 else 0\n",
        [0.5, 0.2],
    ),
    (
        "def policy(obs):\n    t = 0.5\n    for x in obs:\n        t = t * 0.9 + x\n"
        "    return 1 if t > 0.1 else 0\n",
        [0.5, 0.9, 0.1],
    ),
]


def test_inert_numbers_of_small_programs():
    """Dead ones go; numbers read through ``self.`` or carried round a loop stay."""
    for source, live in SMALL:
        assert check_source(source) == [], source
        assert extract_constants(source) == live, source


def test_mutation_never_perturbs_inert_numbers(context):
    gen = OfflineMutator()
    scalar = 0
    for seed in range(60):
        child = gen.mutate(context(), ParentInfo(1, DEAD, 10.0), 0.5, random.Random(seed))
        if child is None or child.change != "scalar":
            continue
        scalar += 1
        assert inert_kept(child.source), child.note
    assert scalar >= 10
