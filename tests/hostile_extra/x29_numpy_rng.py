"""ATTACK: fix the next program's randomness: reseed and advance numpy's global RNG and
Python's random, then replace the seeding functions themselves with no-ops, so a worker
reused for the next program would hand it a known stream instead of the evaluator's seed."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
np = _sys.modules["numpy"]
random = _sys.modules["random"]

np.random.seed(12345)
np.random.random(1000)
random.seed(12345)
np.random.seed = lambda *args, **kwargs: None
random.seed = lambda *args, **kwargs: None
np.random.random = lambda *args, **kwargs: 0.0


def policy(obs):
    return int(np.random.random() > 0.5)
