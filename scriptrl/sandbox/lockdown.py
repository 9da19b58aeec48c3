"""Operating-system layers a worker applies to itself before it runs any untrusted code.

Each layer is tried and its outcome recorded, so the evaluator can report the isolation
level actually achieved and refuse to run generated code when the minimum (a separate
process, resource limits, a scrubbed environment) is not in force. The order matters:
namespaces and chroot need root, so they come before dropping privileges; Landlock needs
no_new_privs; seccomp comes last because it forbids the calls the earlier layers make.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import sys

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
NOBODY = 65534

# Landlock syscall numbers are the same on every architecture (new-style syscall table).
_LL_CREATE, _LL_ADD_RULE, _LL_RESTRICT = 444, 445, 446
_LL_CREATE_RULESET_VERSION = 1

# Syscalls a locked-down Python needs to compute and exchange actions.
ALLOWED_SYSCALLS = (
    "read",
    "write",
    "readv",
    "writev",
    "close",
    "fstat",
    "newfstatat",
    "lseek",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "brk",
    "madvise",
    "futex",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "getpid",
    "getppid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "getrandom",
    "exit",
    "exit_group",
    "sched_yield",
    "sched_getaffinity",
    "getrusage",
)
# Calls whose mere attempt ends the worker: signalling (a denied getppid once turned
# kill(getppid()) into kill(-1)), tracing and cross-process memory access.
FATAL_SYSCALLS = (
    "kill",
    "tkill",
    "tgkill",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_send_signal",
)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _err(prefix: str) -> str:
    e = ctypes.get_errno()
    return f"{prefix}: {errno.errorcode.get(e, e)}"


#: The "process" layer as each start method achieves it (the zygote never ran program code).
SPAWNED = "on (fresh interpreter, separate process)"
FORKED = "on (fresh fork of a pre-imported zygote that never ran program code, separate process)"


def apply(limits: dict, channel_fds: tuple[int, int], process: str = SPAWNED) -> dict[str, str]:
    """Lock this process down; return layer -> "on" or "off (why)"."""
    report: dict[str, str] = {"process": process}
    libc = _libc()
    is_root = os.geteuid() == 0

    report["environment"] = (
        "on (scrubbed)" if not _secret_like_env() else "off (secret-like variables present)"
    )

    if limits.get("network_namespace", True):
        if libc.unshare(CLONE_NEWNET) == 0:
            report["network"] = "on (empty network namespace)"
        else:
            report["network"] = "off (" + _err("unshare") + "; seccomp still denies socket())"
    else:
        report["network"] = "off (disabled)"

    if is_root and limits.get("chroot", True):
        report["filesystem"] = _chroot_empty()
    else:
        report["filesystem"] = "off (chroot needs root)" if not is_root else "off (disabled)"

    if is_root:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            report["privileges"] = f"on (dropped root to uid {NOBODY})"
        except OSError as e:
            report["privileges"] = f"off (setuid failed: {e.strerror})"
    else:
        report["privileges"] = f"on (unprivileged uid {os.geteuid()})"

    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)

    report["landlock"] = _landlock(libc) if limits.get("landlock", True) else "off (disabled)"

    _close_other_fds(channel_fds)
    report["rlimits"] = _rlimits(limits)
    report["seccomp"] = _seccomp() if limits.get("seccomp", True) else "off (disabled)"
    return report


def _secret_like_env() -> bool:
    markers = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
    return any(m in k.upper() for k in os.environ for m in markers)


def _chroot_empty() -> str:
    base = "/tmp/scriptrl-sandbox-root"
    try:
        os.makedirs(base, mode=0o555, exist_ok=True)
        st = os.lstat(base)
        if st.st_uid != 0 or os.listdir(base) or (st.st_mode & 0o222):
            import tempfile

            base = tempfile.mkdtemp(prefix="scriptrl-root-")
            os.chmod(base, 0o555)
        os.chroot(base)
        os.chdir("/")
        return "on (chroot into an empty read-only directory)"
    except OSError as e:
        return f"off (chroot failed: {e.strerror})"


def _landlock(libc: ctypes.CDLL) -> str:
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    abi = syscall(_LL_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_LL_CREATE_RULESET_VERSION))
    if abi < 1:
        return "off (" + _err("landlock unavailable") + ")"
    fs_bits = {1: 13, 2: 14, 3: 15, 4: 15}.get(abi, 16)
    handled_fs = (1 << fs_bits) - 1
    handled_net = 0b11 if abi >= 4 else 0  # bind and connect TCP
    scoped = 0b11 if abi >= 6 else 0  # abstract unix sockets and signals

    class Attr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    attr = Attr(handled_fs, handled_net, scoped)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    fd = syscall(_LL_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        return "off (" + _err("landlock_create_ruleset") + ")"
    rc = syscall(_LL_RESTRICT, ctypes.c_int(fd), ctypes.c_uint32(0))
    os.close(fd)
    if rc != 0:
        return "off (" + _err("landlock_restrict_self") + ")"
    what = ["no file access"]
    if handled_net:
        what.append("no TCP bind/connect")
    if scoped:
        what.append("no abstract sockets or signals out")
    return f"on (ABI {abi}: {', '.join(what)})"


def _close_other_fds(keep: tuple[int, int]) -> None:
    for fd in range(3, 256):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _rlimits(limits: dict) -> str:
    cpu = int(limits.get("cpu_seconds", 600))
    mem = int(limits.get("memory_mb", 1024)) * 1024 * 1024
    wanted = {
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_AS: (mem, mem),
        resource.RLIMIT_FSIZE: (0, 0),
        resource.RLIMIT_NOFILE: (5, 5),  # 0-2 and the two channel fds: no new descriptor at all
        resource.RLIMIT_NPROC: (0, 0),
        resource.RLIMIT_CORE: (0, 0),
    }
    failed = []
    for res, value in wanted.items():
        try:
            resource.setrlimit(res, value)
        except (ValueError, OSError):
            failed.append(str(res))
    if failed:
        return "partial (could not set " + ", ".join(failed) + ")"
    return f"on (cpu {cpu}s, memory {mem >> 20} MB, no file writes, no new files or processes)"


def _seccomp() -> str:
    try:
        import pyseccomp as sc
    except Exception as e:  # pragma: no cover - depends on libseccomp being present
        return f"off (pyseccomp unavailable: {e})"
    try:
        f = sc.SyscallFilter(defaction=sc.ERRNO(errno.EPERM))
        for name in ALLOWED_SYSCALLS:
            try:
                f.add_rule(sc.ALLOW, name)
            except Exception:
                pass  # not a syscall on this architecture
        for name in FATAL_SYSCALLS:
            try:
                f.add_rule(sc.KILL_PROCESS, name)
            except Exception:
                pass
        try:
            f.set_attr(sc.Attr.CTL_TSYNC, 1)
        except Exception:
            pass
        f.load()
    except Exception as e:
        return f"off (seccomp failed: {e})"
    return f"on (allow-list of {len(ALLOWED_SYSCALLS)} system calls; kill and ptrace end the worker)"


def warm_up() -> None:
    """Import and exercise what the worker needs later: lazy imports fail after lockdown."""
    import collections  # noqa: F401
    import dataclasses  # noqa: F401
    import enum  # noqa: F401
    import functools  # noqa: F401
    import itertools  # noqa: F401
    import json
    import linecache  # noqa: F401
    import math  # noqa: F401
    import random  # noqa: F401
    import statistics  # noqa: F401
    import traceback  # noqa: F401
    import typing  # noqa: F401

    import numpy as np
    import pyseccomp  # noqa: F401

    np.random.default_rng(0).random(3)
    np.asarray([1.0, 2.0]).tolist()
    json.dumps([1.5, float("nan")])
    b"x".decode("utf-8")
    try:
        raise ValueError("warm")
    except ValueError:
        traceback.format_exc()
    sys.stdout.flush()
