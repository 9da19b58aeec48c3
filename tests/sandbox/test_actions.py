"""Actions from the untrusted worker are validated exactly: type, shape, finiteness, range."""

import math

import numpy as np
from gymnasium import spaces

from scriptrl.sandbox.actions import make_checker


def test_discrete_accepts_only_in_range_ints():
    check = make_checker(spaces.Discrete(3))
    assert check(2) == (2, None)
    for bad in (
        3,
        -1,
        {"t": "bool"},
        1.0,
        {"t": "other", "type": "NoneType"},
        {"t": "arr", "s": [1], "v": [1]},
        "1",
    ):
        act, reason = check(bad)
        assert act is None and reason.startswith("invalid action")
    assert "a bool" in check({"t": "bool"})[1]
    assert "out of range" in check(5)[1]


def test_discrete_with_start_offset():
    check = make_checker(spaces.Discrete(2, start=-1))
    assert check(-1) == (-1, None)
    assert check(1)[0] is None


def test_box_requires_exact_shape_finite_and_in_bounds():
    space = spaces.Box(low=-2.0, high=2.0, shape=(1,), dtype=np.float32)
    check = make_checker(space)
    act, reason = check({"t": "arr", "k": "f", "s": [1], "v": [0.5]})
    assert reason is None and act.shape == (1,) and act.dtype == np.float32
    assert "shape" in check(0.5)[1]
    assert "shape" in check({"t": "arr", "k": "f", "s": [], "v": [0.5]})[1]
    assert "finite" in check({"t": "arr", "k": "f", "s": [1], "v": [math.nan]})[1]
    assert "finite" in check({"t": "arr", "k": "f", "s": [1], "v": [math.inf]})[1]
    assert "outside" in check({"t": "arr", "k": "f", "s": [1], "v": [2.5]})[1]
    assert check({"t": "arr", "k": "b", "s": [1], "v": [True]})[0] is None
    assert check({"t": "arr", "k": "f", "s": [1], "v": ["x"]})[0] is None
