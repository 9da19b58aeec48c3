"""ATTACK: leave state behind for the next program: rewrite module attributes (math.pi,
numpy.pi, statistics.mean, json.dumps' defaults), plant a module-level cache entry
(functools' and re's caches, linecache), and register a fake module in sys.modules. Under a
fork server every later program must still see the pristine modules: each runs in a fresh
fork of a zygote that never ran program code."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
math = _sys.modules["math"]
np = _sys.modules["numpy"]
linecache = _sys.modules["linecache"]
types = _sys.modules["types"]

math.pi = 3.0
math.scriptrl_pwned = "x28"
np.pi = 3.0
np.scriptrl_pwned = "x28"
statistics.mean = lambda data: 42.0
linecache.cache["scriptrl_pwned.py"] = (1, None, ["pwned\n"], "scriptrl_pwned.py")
_fake = types.ModuleType("scriptrl_pwned")
_fake.owner = "x28"
_sys.modules["scriptrl_pwned"] = _fake


def policy(obs):
    return 0
