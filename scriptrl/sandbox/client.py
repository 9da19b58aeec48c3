"""The trusted side of a sandbox worker: start it, load a program, exchange batches, kill it.

Every read has a deadline and a size bound, and the worker is killed by its PID when it
misses one, so no program can hang the evaluator. Nothing the worker sends is trusted:
frames are parsed as JSON and validated by the evaluator.

``open_worker`` is the one way to get a worker holding a program (forked by this process's
zygote, spawned as a fresh interpreter when the zygote is unavailable or ``fork_server`` is
off, or in-process for a trusted file), and it refuses generated code when the required
isolation layers are not in force. ``act`` is the one exchange of observations for actions.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from scriptrl.sandbox import protocol
from scriptrl.sandbox.exchange import ProgramLoadError, Reply, WorkerFailure, _Exchange
from scriptrl.sandbox.in_process import InProcessWorker

__all__ = [
    "REQUIRED_LAYERS",
    "InProcessWorker",
    "ProgramLoadError",
    "Reply",
    "SandboxLimits",
    "SandboxWorker",
    "TraceWorker",
    "WorkerFailure",
    "isolation_ok",
    "new_worker",
    "open_worker",
    "release_spare_workers",
    "scrubbed_environment",
]

_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
_BOOT = "import sys; sys.path.insert(0, {root!r}); from {module} import main; main()"
#: Layers without which generated code is refused.
REQUIRED_LAYERS = ("process", "environment", "rlimits")
#: Variables copied into the worker: thread counts for determinism and speed, and the
#: OpenBLAS core settings some processors need to compute correctly. Nothing else.
_PASSED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits and layers for one worker; the defaults are the secure ones."""

    memory_mb: int = 1024
    cpu_seconds: int = 600
    network_namespace: bool = True
    chroot: bool = True
    landlock: bool = True
    seccomp: bool = True
    start_timeout: float = 30.0
    load_timeout: float = 5.0


def start_interpreter(module: str, fds: tuple[int, ...]) -> subprocess.Popen:
    """A fresh isolated interpreter (``python -I``, scrubbed environment, its own session, no
    stdio) that runs ``module.main()`` with ``fds`` as its arguments: how both a spawned worker
    and the zygote start."""
    return subprocess.Popen(
        [sys.executable, "-I", "-c", _BOOT.format(root=_PACKAGE_PARENT, module=module), *map(str, fds)],
        pass_fds=fds,
        env=scrubbed_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd="/",
    )


def scrubbed_environment() -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    for k in _PASSED_ENV:
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def isolation_ok(report: dict[str, str]) -> tuple[bool, list[str]]:
    missing = [k for k in REQUIRED_LAYERS if not report.get(k, "off").startswith("on")]
    return not missing, missing


class SandboxWorker(_Exchange):
    """One locked-down worker process, driven over two pipes."""

    #: The module whose ``main()`` the fresh interpreter runs (the tracer boots its own).
    boot_module = "scriptrl.sandbox.worker"
    start_method = "spawn"
    ready_unread = False  # the worker's ready frame is still to be read (by ``load``)

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self.proc: subprocess.Popen | None = None
        self.reader = protocol.FrameReader()
        self.isolation: dict[str, str] = {}
        self.wfd: int | None = None
        self.rfd: int | None = None
        self.dead_reason: str | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            self.proc = start_interpreter(self.boot_module, (to_child_r, from_child_w))
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.wfd, self.rfd = to_child_w, from_child_r
        os.set_blocking(self.wfd, False)
        os.set_blocking(self.rfd, False)

    def wait_ready(self) -> None:
        """Wait for the interpreter to finish its imports (split from spawn so the caller
        can build environments meanwhile)."""
        self._read_ready()

    def _read_ready(self) -> None:
        ready = self.recv(self.limits.start_timeout)
        if not ready.get("ok"):
            self.kill()
            raise WorkerFailure(str(ready.get("error", "worker failed to start"))[:300])

    def load(
        self,
        source: str,
        name: str,
        obs_codec: dict,
        seed: int,
        allowed_imports: list[str] | None,
        family: dict | None = None,
    ) -> dict:
        """Lock the worker down and load the program (``family``: its variants and the variant
        of each episode id, see ``scriptrl.evaluate.family``); return the isolation report."""
        self.codec = obs_codec
        limits = asdict(self.limits)
        self.send(
            {
                "op": "load",
                "source": source,
                "name": name,
                "obs": obs_codec,
                "seed": seed,
                "limits": limits,
                "allowed_imports": allowed_imports,
                **(family or {}),
            }
        )
        if self.ready_unread:  # a forked worker's ready frame, read now that the load is on its way
            self.ready_unread = False
            self._read_ready()
        try:
            # The report is its own frame, written after lockdown and before any program code
            # runs, so a program cannot forge it by writing to the channel itself.
            iso = self.recv(self.limits.load_timeout).get("isolation")
            self.isolation = (
                {str(k)[:40]: str(v)[:200] for k, v in iso.items()} if isinstance(iso, dict) else {}
            )
            reply = self.recv(self.limits.load_timeout)
        except WorkerFailure as e:
            raise WorkerFailure(f"while loading the program: {e.reason}") from None
        if not reply.get("ok"):
            self.kill()
            raise ProgramLoadError(str(reply.get("error", "program failed to load"))[:400], self.isolation)
        return self.isolation

    def send(self, header: dict, payload: bytes = b"", timeout: float = 10.0) -> None:
        if self.wfd is None:
            raise WorkerFailure(self.dead_reason or "the worker is gone")
        data = memoryview(protocol.encode(header, payload))
        deadline = time.monotonic() + timeout
        while data:
            try:
                n = os.write(self.wfd, data)
                data = data[n:]
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [self.wfd], [], left)[1]:
                    raise WorkerFailure(
                        self._death_reason(f"timeout: the worker stopped reading for {timeout:g} s")
                    ) from None
            except (BrokenPipeError, OSError):
                raise WorkerFailure(self._death_reason("the worker is gone")) from None

    def recv(self, timeout: float) -> dict:
        if self.rfd is None:
            raise WorkerFailure(self.dead_reason or "the worker is gone")
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame = self.reader.next_frame()
            except protocol.ProtocolError as e:
                raise self._abandon(f"protocol: the worker sent malformed data ({e})") from None
            if frame is not None:
                return frame[0]
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._abandon(
                    f"timeout: no answer within {timeout:.3g} s (an infinite loop, sleep or blocking call); "
                    "the worker was killed"
                )
            try:  # read first: the answer is usually there already, and select costs a system call
                chunk = os.read(self.rfd, 1 << 20)
            except BlockingIOError:
                select.select([self.rfd], [], [], left)
                continue
            if not chunk:
                raise WorkerFailure(self._death_reason("the worker exited"))
            self.reader.feed(chunk)

    def _abandon(self, reason: str) -> WorkerFailure:
        self.kill()
        self.dead_reason = reason
        return WorkerFailure(reason)

    def _death_reason(self, what: str) -> str:
        """Turn the worker's exit status into words a user can act on (and remember them, so a
        later send or receive on the dead worker says the same)."""
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        if code is None:
            reason = what
        elif code < 0:
            sig = -code
            meanings: dict[int, str] = {
                signal.SIGSYS: (
                    "forbidden operation: the sandbox killed it for a forbidden system call"
                    " (kill, ptrace, ...)"
                ),
                signal.SIGXCPU: "cpu: it used up its CPU-time limit",
                signal.SIGKILL: "killed (SIGKILL): memory or time limit",
                signal.SIGSEGV: "crash: segmentation fault (deep recursion or a native call)",
                signal.SIGXFSZ: "forbidden operation: it tried to write a file",
                signal.SIGABRT: "crash: the interpreter aborted",
            }
            meaning = meanings.get(sig, f"killed by signal {sig}")
            reason = f"{what}: {meaning}"
        else:
            reason = (
                f"{what} with status {code}"
                " (the program ended its own process: sys.exit, os._exit or similar)"
            )
        self.dead_reason = reason
        return reason

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - a SIGKILLed process always ends
                pass
        self._forget_process()

    def _forget_process(self) -> None:
        """Close our ends of the two pipes and drop the process: the end of every kill."""
        for fd in (getattr(self, "wfd", None), getattr(self, "rfd", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.wfd = self.rfd = None
        self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None and self.wfd is not None:
            try:
                self.send({"op": "exit"}, timeout=0.5)
            except WorkerFailure:
                pass
        self.kill()

    def __enter__(self) -> SandboxWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TraceWorker(SandboxWorker):
    """The sandbox worker, booted into the tracing loop; everything else is the plain client's."""

    boot_module = "scriptrl.sandbox.trace_worker"
    traced = True


#: Why the last request for a forked worker was spawned instead (``scriptrl doctor`` says it).
fallback_reason: str | None = None
_spares: dict[SandboxLimits, SandboxWorker] = {}
_spares_lock = threading.Lock()


def new_worker(
    limits: SandboxLimits | None = None,
    *,
    traced: bool = False,
    unsafe: bool = False,
    fork_server: bool = True,
    warm_spare: bool = False,
) -> SandboxWorker | InProcessWorker:
    """Begin starting a worker: a fork of this process's zygote, or a fresh interpreter when the
    zygote is unavailable or ``fork_server`` is off. Call ``open_worker`` with it to load a program.

    ``warm_spare`` (spawning only) takes a pre-started interpreter and starts its successor,
    hiding the interpreter's start-up (numpy's import, mostly) behind the evaluation.
    """
    global fallback_reason
    if unsafe:
        return InProcessWorker(traced=traced)
    limits = limits or SandboxLimits()
    if fork_server:
        from scriptrl.sandbox.forkserver import ForkedWorker, ZygoteGone

        forked = ForkedWorker(limits, boot="trace" if traced else "worker")
        try:
            forked.spawn()
            fallback_reason = None
            return forked
        except ZygoteGone as e:
            fallback_reason = str(e)
    if traced or not warm_spare:
        worker = TraceWorker(limits) if traced else SandboxWorker(limits)
        worker.spawn()
        return worker
    with _spares_lock:  # evaluator threads share the spare; each takes one, none is left behind
        spare = _spares.pop(limits, None)
        if spare is None or spare.proc is None or spare.proc.poll() is not None:
            spare = SandboxWorker(limits)
            spare.spawn()
        successor = SandboxWorker(limits)
        successor.spawn()
        _spares[limits] = successor
    return spare


@atexit.register
def release_spare_workers() -> None:
    """Kill the pre-started spares and stop this process's zygote (a loop that evaluated many
    programs calls this when it is done; the next evaluation starts a new zygote)."""
    from scriptrl.sandbox.forkserver import stop_fork_server

    for w in _spares.values():
        w.kill()
    _spares.clear()
    stop_fork_server()


def open_worker(
    source: str,
    name: str,
    codec: dict,
    seed: int,
    *,
    allowed_imports: list[str] | None,
    limits: SandboxLimits | None = None,
    traced: bool = False,
    unsafe: bool = False,
    fork_server: bool = True,
    worker: SandboxWorker | InProcessWorker | None = None,
    family: dict | None = None,
) -> SandboxWorker | InProcessWorker:
    """A worker with the program loaded (``worker``, begun by ``new_worker``, or a new one).

    Raises ProgramLoadError when the program does not load and WorkerFailure when the worker
    fails or the required isolation layers are not in force (only an in-process worker, for a
    file the user trusts, runs without them). ``worker.isolation`` is the worker's own report.
    """
    worker = worker or new_worker(limits, traced=traced, unsafe=unsafe, fork_server=fork_server)
    try:
        worker.wait_ready()
        isolation = worker.load(source, name, codec, seed, allowed_imports, family)
    except BaseException:
        worker.kill()
        raise
    if not isinstance(worker, InProcessWorker):
        ok, missing = isolation_ok(isolation)
        if not ok:
            worker.kill()
            raise WorkerFailure(
                "refused: required isolation layers not in force ("
                + ", ".join(missing)
                + "); see `scriptrl doctor`"
            )
    return worker
