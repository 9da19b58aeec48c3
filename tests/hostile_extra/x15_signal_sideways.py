"""ATTACK: signal the evaluator through the calls a kill() filter may forget: sigqueue()
(rt_sigqueueinfo) and rt_tgsigqueueinfo through ctypes, SIGUSR1 to the parent; then
os.killpg(0, SIGUSR1) and signal.pthread_kill. Nothing may reach the test process."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
ctypes = _sys.modules["ctypes"]
os = _sys.modules["os"]
signal = _sys.modules["signal"]

_report = []


def policy(obs):
    ppid = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _report.append(f"sigqueue={libc.sigqueue(ppid, signal.SIGUSR1, 0)}/errno {ctypes.get_errno()}")
        info = (ctypes.c_int * 32)(signal.SIGUSR1, 0, -1)
        queued = libc.syscall(297, ppid, ppid, signal.SIGUSR1, info)
        _report.append(f"rt_tgsigqueueinfo={queued}/errno {ctypes.get_errno()}")
    except BaseException as e:
        _report.append(f"ctypes:{repr(e).partition('(')[0]}")
    for name, fn in (
        ("killpg", lambda: os.killpg(0, signal.SIGUSR1)),
        ("pthread_kill", lambda: signal.pthread_kill(0, signal.SIGUSR1)),
    ):
        try:
            fn()
            _report.append(f"{name} OK")
        except BaseException as e:
            _report.append(f"{name}:{repr(e).partition('(')[0]}")
    raise RuntimeError("; ".join(_report))
