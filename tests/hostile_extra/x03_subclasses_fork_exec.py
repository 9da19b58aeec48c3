"""ATTACK: reach the os module without any import statement, through the
object.__subclasses__() walk (os._wrap_close.__init__.__globals__), then try to start
processes every way os offers: fork, posix_spawn, spawnv, execv (which would replace the
worker with a shell). A child that does start writes /tmp/scriptrl-hostile/PWNED_fork."""

_report = []
_os = None
for _c in ().__class__.__base__.__subclasses__():
    if _c.__name__ == "_wrap_close":
        _os = _c.__init__.__globals__
        break
if _os is None:
    _report.append("os not found")
else:
    _cmd = ["/bin/sh", "-c", "touch /tmp/scriptrl-hostile/PWNED_fork"]
    for _name, _call in (
        ("fork", lambda: _os["fork"]()),
        ("posix_spawn", lambda: _os["posix_spawn"]("/bin/sh", _cmd, {})),
        ("spawnv", lambda: _os["spawnv"](_os["P_NOWAIT"], "/bin/sh", _cmd)),
        ("execv", lambda: _os["execv"]("/bin/sh", _cmd)),
    ):
        try:
            _pid = _call()
            if _pid == 0:
                try:
                    _os["open"]("/tmp/scriptrl-hostile/PWNED_fork", 0o101)
                finally:
                    _os["_exit"](0)
            _report.append(f"{_name} STARTED {_pid}")
        except BaseException as e:
            _report.append(f"{_name}:{repr(e).partition('(')[0]}")


def policy(obs):
    raise RuntimeError("; ".join(_report))
