"""ATTACK: close the worker's request channel (fd 3) during the first call, then answer
that batch normally. The evaluator's next send fails at once (nobody reads the pipe) while
the reply for the other lane is still owed, which exercises the "worker died on send"
path: the evaluator must turn it into failure reasons, not crash on a half-dead worker."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
os = _sys.modules["os"]

_n = [0]


def policy(obs):
    _n[0] += 1
    if _n[0] == 1:
        os.close(3)
    return 0
