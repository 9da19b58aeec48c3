"""ATTACK (Box action space): actions that a naive clip-and-step would pass to the physics:
[nan], [inf], an out-of-range [3.0], a bare scalar, a bool array, shape (1, 1), a numpy nan
scalar, a float32 array holding nan and a list of strings (one per call)."""

# scriptrl-hostile-env: Pendulum-v1
import numpy as np

_bad = [
    [float("nan")],
    [float("inf")],
    [3.0],
    0.5,
    np.array([True]),
    [[0.0]],
    np.float64("nan"),
    np.array([np.nan], dtype=np.float32),
    ["1.0"],
]
_n = [0]


def policy(obs):
    _n[0] += 1
    return _bad[_n[0] % len(_bad)]
