"""ATTACK: return actions that are expensive to encode, send or validate: a 10^7-element
numpy array, a 10^6-element list, a list nested 100 000 deep, 50 MB of bytes, a 4096-element
list, a dict and a generator (one per call)."""

import numpy as np

_n = [0]


def _nested(depth):
    x = [0]
    for _ in range(depth):
        x = [x]
    return x


def policy(obs):
    _n[0] += 1
    k = _n[0] % 7
    if k == 0:
        return np.zeros(10**7)
    if k == 1:
        return [0] * 10**6
    if k == 2:
        return _nested(100_000)
    if k == 3:
        return b"\x00" * (50 << 20)
    if k == 4:
        return [0] * 4096
    if k == 5:
        return {"action": 1}
    return (i for i in range(3))
