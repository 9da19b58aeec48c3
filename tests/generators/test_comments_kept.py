"""Mutation, crossover and tuning keep a program's comments and docstrings.

Derived programs used to be unparsed from the syntax tree, losing every comment, the
licence header included. Now every comment of the part an edit did not touch survives:
header comments always, a comment line when the code line after it is still there, and
an inline comment when its line's code is still there.
"""

from __future__ import annotations

import ast
import copy
import random

from scriptrl.generators import OfflineMutator, extract_constants, with_constants
from scriptrl.generators.ast_splice import render_edit
from scriptrl.generators.base import ParentInfo
from scriptrl.program import check_source

COMMENTED = '''# Copyright 2024 Example Lab. Licensed under the Apache License, Version 2.0.
# Source: a hand-written CartPole controller, adapted for scriptrl.
"""Balance the pole by leaning into its fall."""

import math

GAIN = 1.5  # how hard the cart pushes back


def lean(angle, rate):
    """Where the pole is heading: its angle plus a damped rate."""
    # the rate term damps the oscillation
    return angle + 0.5 * rate  # radians


def policy(obs):
    """Push toward the side the pole falls to."""
    cart_position = obs[0]  # m
    cart_velocity = obs[1]
    pole_angle = obs[2]  # rad
    pole_angular_velocity = obs[3]
    # combine the pole's state with a little of the cart's
    score = GAIN * lean(pole_angle, pole_angular_velocity) + 0.05 * cart_velocity
    if cart_position > 2.0:  # near the right edge
        return 0
    if score > 0.0:  # falling right: push right
        return 1
    return 0
'''

COMMENTED_CLASS = '''# SPDX-License-Identifier: MIT
"""A stateful controller: it remembers the last angle."""


class Policy:
    """Leans into the fall, faster when the fall speeds up."""

    def reset(self, seed=None):
        # a new episode starts level
        self.last = 0.0

    def act(self, obs):
        pole_angle = obs[2]  # rad
        pole_angular_velocity = obs[3]
        # how much faster the pole falls than last step
        speed_up = pole_angle - self.last
        self.last = pole_angle
        if pole_angle + 0.3 * pole_angular_velocity + 0.1 * speed_up > 0.0:  # falling right
            return 1
        return 0
'''

DONOR = """# Donor program: a different structure with its own notes.
def policy(obs):
    cart_position = obs[0]
    cart_velocity = obs[1]
    pole_angle = obs[2]
    pole_angular_velocity = obs[3]
    # mostly the angular velocity
    score = 0.3 * pole_angle + 1.2 * pole_angular_velocity - 0.01 * cart_position
    if pole_angular_velocity < -0.4 and pole_angle < 0.1:
        return 0
    return 1 if score > 0.02 else 0
"""


def _code(line: str) -> str:
    return line.split("#", 1)[0].strip()


def kept_comments(parent: str, child: str) -> list[str]:
    """The comments of ``parent`` an edit producing ``child`` should have kept but lost."""
    lines = parent.splitlines()
    child_lines = [ln.strip() for ln in child.splitlines()]
    child_code = {_code(ln) for ln in child.splitlines()}
    first_code = next(i for i, ln in enumerate(lines) if ln.strip() and not ln.strip().startswith("#"))
    lost = []
    for i, ln in enumerate(lines):
        text = ln.strip()
        if text.startswith("#"):
            after = next((_code(x) for x in lines[i + 1 :] if _code(x)), "")
            if (i < first_code or after in child_code) and text not in child_lines:
                lost.append(text)
        elif "#" in text and _code(text) in child_code:
            if not any(_code(c) == _code(text) and c.endswith(text[text.index("#") :]) for c in child_lines):
                lost.append(text)
    return lost


def valid(source: str) -> None:
    assert check_source(source) == [], source
    compile(source, "policy.py", "exec", dont_inherit=True)


def test_mutation_keeps_the_comments_of_what_it_did_not_change(context):
    gen = OfflineMutator()
    children = structural = 0
    for parent in (COMMENTED, COMMENTED_CLASS):
        for seed in range(40):
            temperature = (0.3, 0.9, 1.4)[seed % 3]
            child = gen.mutate(context(), ParentInfo(1, parent, 10.0), temperature, random.Random(seed))
            if child is None:
                continue
            valid(child.source)
            children += 1
            structural += child.change == "structural"
            assert kept_comments(parent, child.source) == [], (child.note, child.source)
            assert parent.split('"""')[1] in child.source  # the module docstring
    assert children >= 60 and structural >= 15


def test_crossover_keeps_the_receiving_programs_comments(context):
    gen = OfflineMutator()
    children = 0
    for a, b in ((COMMENTED, DONOR), (DONOR, COMMENTED)):
        for seed in range(30):
            child = gen.crossover(
                context(), ParentInfo(1, a, 10.0), ParentInfo(2, b, 9.0), 1.0, random.Random(seed)
            )
            if child is None:
                continue
            valid(child.source)
            children += 1
            # The receiver is whichever parent's header the child carries; all its kept comments are there.
            receiver = COMMENTED if "# Copyright 2024" in child.source else DONOR
            assert receiver.splitlines()[0] in child.source, child.source
            assert kept_comments(receiver, child.source) == [], (child.note, child.source)
    assert children >= 30


def test_tuned_constants_are_written_back_keeping_every_comment():
    """The search's tuning writes its CMA-ES points back with ``with_constants``."""
    comments = [ln[ln.index("#") :] for ln in COMMENTED.splitlines() if "#" in ln]
    start = extract_constants(COMMENTED)
    assert start
    for seed in range(3):
        rng = random.Random(seed)
        values = [v * (1 + rng.uniform(-0.5, 0.5)) + rng.uniform(-0.1, 0.1) for v in start]
        source = with_constants(COMMENTED, values)
        assert source != COMMENTED
        valid(source)
        assert [ln[ln.index("#") :] for ln in source.splitlines() if "#" in ln] == comments
        assert '"""Where the pole is heading: its angle plus a damped rate."""' in source


def _assigns(s: ast.stmt, name: str) -> bool:
    return isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name) and s.targets[0].id == name


def test_a_transplanted_statement_keeps_its_own_comment_lines():
    """What crossover does: a deep copy of the donor's statement in place of the receiver's."""
    tree = ast.parse(COMMENTED)
    policy = next(s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "policy")
    donor_policy = next(s for s in ast.parse(DONOR).body if isinstance(s, ast.FunctionDef))
    k = next(i for i, s in enumerate(policy.body) if _assigns(s, "score"))
    donated = next(s for s in donor_policy.body if _assigns(s, "score"))
    policy.body[k] = copy.deepcopy(donated)
    out = render_edit(COMMENTED, tree, donors=[DONOR])
    valid(out)
    assert ast.dump(ast.parse(out)) == ast.dump(tree)
    assert "    # mostly the angular velocity\n    score = 0.3 * pole_angle" in out
    assert kept_comments(COMMENTED, out) == []
    assert "# Donor program" not in out  # the donor's file header is not the statement's
    without = render_edit(COMMENTED, tree)
    assert "# mostly the angular velocity" not in without and kept_comments(COMMENTED, without) == []
