"""ATTACK: signal the evaluator: os.kill(os.getppid(), SIGTERM) on the first call (the
harness records any signal that reaches the test process). kill() must end the worker and
never reach the parent."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
os = _sys.modules["os"]
signal = _sys.modules["signal"]


def policy(obs):
    os.kill(os.getppid(), signal.SIGTERM)
    return 0
