"""ATTACK: patch the real builtins module (not the program's copy of its namespace): len,
abs, min, max and isinstance return lies, a marker name is added, and __import__ is wrapped.
The worker's own code uses these builtins too, so this worker may break; the next program
must find every builtin pristine."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
builtins = _sys.modules["builtins"]

builtins.scriptrl_pwned = "x30"
builtins.abs = lambda x: -1
builtins.min = lambda *a, **k: 99
builtins.max = lambda *a, **k: -99
_real_import = builtins.__import__
builtins.__import__ = lambda name, *a, **k: _real_import(name, *a, **k)


def policy(obs):
    builtins.len = lambda x: 0  # last: the load reply above still needed the real len
    return 0
