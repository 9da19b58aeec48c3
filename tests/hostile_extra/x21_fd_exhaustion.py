"""ATTACK: exhaust file descriptors (os.pipe and os.dup in a loop), then close the worker's
own channel descriptors and try to take their numbers (dup2 of stdout over fd 4), to wedge
the protocol. The results go into the failure reason when the channel still works."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
os = _sys.modules["os"]

_report = []
_fds = []
for _name, _fn in (("pipe", os.pipe), ("dup", lambda: os.dup(1))):
    _n = 0
    try:
        while _n < 10_000:
            _fds.append(_fn())
            _n += 1
        _report.append(f"{_name} x{_n}")
    except BaseException as e:
        _report.append(f"{_name} stopped after {_n}: {repr(e).partition('(')[0]}")
try:
    os.dup2(1, 4)
    _report.append("dup2 over fd 4 OK")
except BaseException as e:
    _report.append(f"dup2:{repr(e).partition('(')[0]}")


def policy(obs):
    raise RuntimeError("; ".join(_report))
