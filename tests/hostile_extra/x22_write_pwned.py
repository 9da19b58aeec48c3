"""ATTACK: change host files every way the os module offers: create
/tmp/scriptrl-hostile/PWNED_x (open, os.open, np.save, ndarray.tofile), mkdir, mknod, symlink
and hard link, chmod/chown/utime/truncate/rename of victim.txt, and a write relative to the
working directory (the chroot's root)."""

import statistics

import numpy as np

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
_open = _sys.modules["io"].open
os = _sys.modules["os"]

_D = "/tmp/scriptrl-hostile"
_report = []
for _name, _fn in (
    ("open", lambda: _open(f"{_D}/PWNED_x", "w").write("x")),
    ("os.open", lambda: os.open(f"{_D}/PWNED_osopen", os.O_CREAT | os.O_WRONLY, 0o644)),
    ("np.save", lambda: np.save(f"{_D}/PWNED_np.npy", np.zeros(3))),
    ("tofile", lambda: np.zeros(3).tofile(f"{_D}/PWNED_tofile")),
    ("mkdir", lambda: os.mkdir(f"{_D}/PWNED_dir")),
    ("mknod", lambda: os.mknod(f"{_D}/PWNED_node")),
    ("symlink", lambda: os.symlink("/etc/passwd", f"{_D}/PWNED_link")),
    ("link", lambda: os.link(f"{_D}/victim.txt", f"{_D}/PWNED_hard")),
    ("chmod", lambda: os.chmod(f"{_D}/victim.txt", 0o777)),
    ("chown", lambda: os.chown(f"{_D}/victim.txt", 65534, 65534)),
    ("utime", lambda: os.utime(f"{_D}/victim.txt", (0, 0))),
    ("truncate", lambda: os.truncate(f"{_D}/victim.txt", 0)),
    ("rename", lambda: os.rename(f"{_D}/victimdir", f"{_D}/PWNED_moved")),
    ("relative", lambda: _open("PWNED_relative", "w").write("x")),
):
    try:
        _fn()
        _report.insert(0, f"{_name} OK")
    except BaseException as e:
        _report.append(f"{_name}:{repr(e).partition('(')[0]}")


def policy(obs):
    raise RuntimeError("; ".join(_report))
