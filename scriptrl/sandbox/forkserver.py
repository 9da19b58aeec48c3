"""The trusted side of the fork server: one zygote per evaluator process, and the workers it forks.

Starting a fresh ``python -I`` worker costs about 100 ms (numpy's import, mostly); a fork of
the pre-imported zygote costs a few milliseconds, and the child then locks itself down
exactly as a spawned worker does. A ``ForkedWorker`` is a ``SandboxWorker`` in everything
but how its process starts, is killed and reports its exit: it speaks the same protocol on
the same two pipes, and the evaluator kills it by its pidfd (never by a PID that may have
been reused). When the zygote is gone, ``fork_worker`` says so and the caller spawns
instead; the next request starts a new zygote.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from typing import cast

from scriptrl.sandbox.client import SandboxLimits, SandboxWorker, start_interpreter
from scriptrl.sandbox.zygote import MAX_MESSAGE

#: After this many zygotes in a row failed to start, stop trying and spawn every worker.
MAX_ZYGOTE_FAILURES = 3


class ZygoteGone(Exception):
    """The fork server is not available (dead, broken or refusing to start)."""


class ForkServer:
    """The evaluator's handle on its zygote: ask for a fork, learn exit statuses, stop it."""

    def __init__(self, start_timeout: float = 30.0) -> None:
        self.owner = os.getpid()
        self.lock = threading.Lock()
        self.exits: dict[int, int] = {}
        self.live: set[int] = set()
        self.ready = False
        self.dead: str | None = None
        self.start_timeout = start_timeout
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = start_interpreter("scriptrl.sandbox.zygote", (theirs.fileno(),))
        finally:
            theirs.close()
        self.ctrl = ours
        self.pid = self.proc.pid

    # --- messages ------------------------------------------------------------------------
    def _recv(self, timeout: float) -> tuple[dict, list[int]]:
        """One control message (the caller holds the lock); ZygoteGone when none can come."""
        if self.dead:
            raise ZygoteGone(self.dead)
        if not select.select([self.ctrl], [], [], max(0.0, timeout))[0]:
            raise TimeoutError
        try:
            data, fds, _, _ = socket.recv_fds(self.ctrl, MAX_MESSAGE, 1)
        except OSError as e:
            raise self._broken(f"the zygote's channel failed ({e})") from None
        if not data:
            raise self._broken("the zygote exited")
        try:
            message = json.loads(data)
        except ValueError:
            for fd in fds:
                os.close(fd)
            raise self._broken("the zygote sent malformed data") from None
        if message.get("op") == "exit":
            pid = message.get("pid")
            if pid in self.live:
                self.exits[pid] = int(message.get("status", 0))
        return message, fds

    def _drain(self) -> None:
        """Take the exit reports already waiting, so the zygote's writes never block."""
        while True:
            try:
                _, fds = self._recv(0.0)
            except TimeoutError:
                return
            for fd in fds:
                os.close(fd)

    def _broken(self, why: str) -> ZygoteGone:
        self.dead = why
        return ZygoteGone(why)

    def wait_ready(self) -> None:
        with self.lock:
            if self.ready:
                return
            try:
                message, _ = self._recv(self.start_timeout)
            except TimeoutError:
                raise self._broken(f"the zygote did not start within {self.start_timeout:g} s") from None
            if message.get("op") != "ready" or not message.get("ok"):
                raise self._broken(str(message.get("error", "the zygote failed to start"))[:300])
            self.ready = True
        _zygote_answered()

    # --- workers -------------------------------------------------------------------------
    def fork(self, boot: str, child_fds: tuple[int, int], timeout: float = 5.0) -> tuple[int, int]:
        """Fork a worker holding ``child_fds`` as its channel; return its PID and a pidfd."""
        self.wait_ready()
        with self.lock:
            self._drain()
            try:
                socket.send_fds(
                    self.ctrl, [json.dumps({"op": "fork", "boot": boot}).encode()], list(child_fds)
                )
            except OSError as e:
                raise self._broken(f"the zygote's channel failed ({e})") from None
            deadline = time.monotonic() + timeout
            while True:
                try:
                    message, fds = self._recv(deadline - time.monotonic())
                except TimeoutError:
                    raise self._broken(f"the zygote did not fork within {timeout:g} s") from None
                if message.get("op") == "forked" and len(fds) == 1 and isinstance(message.get("pid"), int):
                    pid = message["pid"]
                    self.exits.pop(pid, None)
                    self.live.add(pid)
                    return pid, fds[0]
                if message.get("op") == "fork-failed":  # the zygote lives on; this worker is spawned
                    raise ZygoteGone(str(message.get("error"))[:200])
                for fd in fds:
                    os.close(fd)

    def wait_exit(self, pid: int, timeout: float) -> int | None:
        """The exit status of a worker that has ended, as ``Popen.returncode`` spells it."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while pid not in self.exits:
                try:
                    _, fds = self._recv(deadline - time.monotonic())
                except (TimeoutError, ZygoteGone):
                    return None
                for fd in fds:
                    os.close(fd)
            return self.exits[pid]

    def forget(self, pid: int) -> None:
        with self.lock:
            self.live.discard(pid)
            self.exits.pop(pid, None)

    def alive(self) -> bool:
        return self.dead is None and self.proc.poll() is None

    def stop(self) -> None:
        """End the zygote (its children die with it: they are killed, and PDEATHSIG is set)."""
        self.dead = self.dead or "stopped"
        try:
            self.ctrl.close()  # EOF: the zygote kills its children and exits
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


class _ForkedProcess:
    """What ``SandboxWorker`` needs of its process, for a child of the zygote."""

    def __init__(self, server: ForkServer, pid: int, pidfd: int) -> None:
        self.server, self.pid, self.pidfd = server, pid, pidfd
        self.returncode: int | None = None
        self.ended = False

    def _ended(self, timeout: float) -> bool:
        if not self.ended:  # a released process has no pidfd left: nothing more to wait for
            self.ended = self.pidfd < 0 or bool(select.select([self.pidfd], [], [], max(0.0, timeout))[0])
        return self.ended

    def poll(self) -> int | None:
        return self.returncode if self._ended(0.0) else None

    def wait(self, timeout: float) -> int | None:
        """The exit status (None when the zygote cannot tell it); TimeoutExpired while it runs."""
        deadline = time.monotonic() + timeout
        if not self._ended(timeout):
            raise subprocess.TimeoutExpired("sandbox worker", timeout)
        if self.returncode is None:
            self.returncode = self.server.wait_exit(self.pid, deadline - time.monotonic())
        return self.returncode

    def kill(self) -> None:
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass
        self._ended(5.0)

    def release(self) -> None:
        """Idempotent: a second call (a kill after a failed one) must not close an fd number that
        may by then belong to another file."""
        fd, self.pidfd = self.pidfd, -1
        if fd >= 0:
            os.close(fd)
            self.server.forget(self.pid)


class ForkedWorker(SandboxWorker):
    """A sandbox worker forked by the zygote: ``start`` costs a fork, not an interpreter."""

    start_method = "fork-server"

    def __init__(self, limits: SandboxLimits | None = None, boot: str = "worker") -> None:
        super().__init__(limits)
        self.boot = boot
        self.traced = boot == "trace"  # the forked tracing worker sends a frame of traces before each reply

    def spawn(self) -> None:
        server = fork_server(self.limits.start_timeout)
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            pid, pidfd = server.fork(self.boot, (to_child_r, from_child_w))
        except ZygoteGone:
            for fd in (to_child_w, from_child_r):
                os.close(fd)
            raise
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.proc = _ForkedProcess(server, pid, pidfd)  # type: ignore[assignment]
        self.wfd, self.rfd = to_child_w, from_child_r
        os.set_blocking(self.wfd, False)
        os.set_blocking(self.rfd, False)
        # A fork needs no warm-up: ``load`` reads the ready frame, one round trip less.
        self.ready_unread = True

    def wait_ready(self) -> None:
        """Nothing to wait for: the zygote did the imports before it forked."""

    def kill(self) -> None:
        proc = cast(_ForkedProcess | None, self.proc)  # what spawn() stored where the base keeps a Popen
        if proc is not None:
            if proc.returncode is None and not proc.ended:
                proc.kill()
            proc.release()
        self._forget_process()


_server: ForkServer | None = None
_failures = 0
_server_lock = threading.Lock()


def fork_server(start_timeout: float = 30.0) -> ForkServer:
    """This process's zygote, started on first use. When it has died, a new one is started and
    this request gets ZygoteGone (its worker is spawned meanwhile); after MAX_ZYGOTE_FAILURES
    zygotes in a row that never answered ready, every request gets ZygoteGone."""
    global _server, _failures
    with _server_lock:
        server = _server
        if server is not None and server.alive():
            return server
        if _failures >= MAX_ZYGOTE_FAILURES:
            raise ZygoteGone(f"{_failures} zygotes in a row failed to start; every worker is spawned")
        _server = ForkServer(start_timeout)
        if server is None:
            return _server  # the first one: wait for it rather than start two interpreters at once
        if not server.ready:
            _failures += 1
        why = server.dead or "the zygote exited"
        server.stop()
        raise ZygoteGone(f"{why}; this worker is spawned while a new zygote starts")


def _zygote_answered() -> None:
    """A zygote answered ready: earlier start failures no longer count."""
    global _failures
    _failures = 0


def zygote_pid() -> int | None:
    """The PID of this process's zygote while it runs (doctor, tests)."""
    server = _server
    return server.pid if server is not None and server.alive() else None


def stop_fork_server() -> None:
    """Stop this process's zygote (tests, and a long-lived process that is done evaluating)."""
    global _server
    with _server_lock:
        if _server is not None:
            _server.stop()
            _server = None


def _forget_after_fork() -> None:
    """A forked evaluator (multiprocessing's fork start method) must not share its parent's zygote."""
    global _server, _server_lock
    if _server is not None:
        try:
            _server.ctrl.close()
        except OSError:
            pass
    _server, _server_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
