"""Crossover must not paste code that reads a name the receiving scope does not bind.

A condition from the donor's ``act`` that names the donor's local ``v`` used to pass the
binding check when the receiver bound ``v`` anywhere else in the module (a local of
``reset``, a helper's parameter): the child then failed with NameError on its first step.
"""

from __future__ import annotations

import random

import pytest

from scriptrl.generators import OfflineMutator
from scriptrl.generators import astutil as au
from scriptrl.generators.base import ParentInfo

RECEIVER_CLASS = """class Policy:
    def reset(self):
        v = 0.0  # a local of reset: act cannot see it
        self.steps = int(v)

    def act(self, obs):
        self.steps += 1
        angle = obs[2]
        if angle > 0.0:
            return 1
        return 0
"""

DONOR_CLASS = """class Policy:
    def reset(self):
        self.last = 0.0

    def act(self, obs):
        v = obs[3]
        angle = obs[2]
        if v > 0.1 and self.last < 0.5:
            return 1
        return 0
"""

RECEIVER_FUNCTION = """def lean(angle, v):
    return angle + 0.5 * v


def policy(obs):
    angle = obs[2]
    if lean(angle, obs[3]) > 0.0:
        return 1
    return 0
"""

DONOR_FUNCTION = """def policy(obs):
    v = obs[3]
    angle = obs[2]
    if v > 0.1:
        return 1
    if angle < -0.2:
        return 0
    return 1 if angle > 0.05 else 0
"""


def run_steps(source: str, observations: list[list[float]]) -> list[int]:
    """Our own generated program, run on a few observations (as the generator tests do)."""
    ns: dict = {}
    exec(compile(source, "policy.py", "exec", dont_inherit=True), ns)
    if "Policy" in ns:
        p = ns["Policy"]()
        p.reset()
        return [p.act(o) for o in observations]
    return [ns["policy"](o) for o in observations]


def test_the_check_refuses_a_read_of_another_scopes_local():
    pasted_class = RECEIVER_CLASS.replace("if angle > 0.0:", "if v > 0.1:")
    pasted_function = RECEIVER_FUNCTION.replace("if lean(angle, obs[3]) > 0.0:", "if v > 0.1:")
    for receiver, pasted in ((RECEIVER_CLASS, pasted_class), (RECEIVER_FUNCTION, pasted_function)):
        assert au.problem(receiver) is None
        assert "undefined names: v" in (au.problem(pasted) or "")
        with pytest.raises(NameError):
            run_steps(pasted, [[0.0, 0.0, 0.1, 0.5]])


def test_the_check_refuses_an_attribute_the_class_never_sets():
    pasted = RECEIVER_CLASS.replace("if angle > 0.0:", "if self.last < 0.5:")
    assert "self.last" in (au.problem(pasted) or "")
    with pytest.raises(AttributeError):
        run_steps(pasted, [[0.0, 0.0, 0.1, 0.5]])


def test_the_check_refuses_a_local_read_before_it_is_bound():
    late = RECEIVER_FUNCTION.replace("    angle = obs[2]\n", "").replace(
        "    return 0\n", "    angle = obs[2]\n    return 0\n"
    )
    assert "undefined names: angle" in (au.problem(late) or "")
    assert au.problem(RECEIVER_FUNCTION) is None


@pytest.mark.parametrize(
    "receiver,donor", [(RECEIVER_CLASS, DONOR_CLASS), (RECEIVER_FUNCTION, DONOR_FUNCTION)]
)
def test_crossover_children_run_without_name_errors(receiver, donor, context):
    gen = OfflineMutator()
    observations = [[0.1, -0.2, 0.05, 0.3], [-0.5, 0.4, -0.1, -0.6], [0.0, 0.0, 0.2, 0.05]]
    children = 0
    for seed in range(60):
        child = gen.crossover(
            context(), ParentInfo(1, receiver, 1.0), ParentInfo(2, donor, 2.0), 1.0, random.Random(seed)
        )
        if child is None:
            continue
        children += 1
        actions = run_steps(child.source, observations)  # NameError/AttributeError fails the test
        assert all(a in (0, 1) for a in actions)
    assert children >= 10
