"""The fork server (zygote): a pre-imported, not-yet-locked interpreter that forks one worker per program.

It is started once per evaluator process, exactly like a spawned worker (``python -I``, the
scrubbed environment, single-threaded numpy), imports and exercises everything a worker
needs, and then only ever forks. It never receives program code: the evaluator hands it
the two pipe ends of a new worker's channel over a Unix socket (``SCM_RIGHTS``), it forks,
and the child drops everything of the zygote (control socket, signal plumbing), starts its
own session and runs the worker's ``serve``: the same lockdown layers in the same order,
the same isolation report frame written before any program code runs. So each program
starts in a fresh copy of a process no program ever touched, and what it changes (module
state, numpy's RNG, builtins) dies with its copy.

Control messages are JSON, one per datagram. The zygote sends ``ready`` once, ``forked``
(with a pidfd, so the evaluator can kill the child without a PID-reuse race) after each
fork, and ``exit`` with the child's status when it reaps one, because only the parent can.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys

MAX_MESSAGE = 4096


def _send(ctrl: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(ctrl, [data], list(fds))
    else:
        ctrl.send(data)


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def main() -> None:
    ctrl = socket.socket(fileno=int(sys.argv[-1]))
    from scriptrl.sandbox import lockdown, worker  # noqa: F401  (imported before any fork)

    try:
        lockdown.warm_up()
        if _threads() != 1:  # fork copies only the calling thread: a lock held elsewhere would deadlock
            raise RuntimeError(f"the zygote runs {_threads()} threads after its imports; it must run one")
        # The evaluator kills workers by pidfd: the kernel must have them.
        os.close(os.pidfd_open(os.getpid()))
    except BaseException as e:
        _send(ctrl, {"op": "ready", "ok": False, "error": f"zygote start failed: {e!r}"[:300]})
        return
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wake_w)
    _send(ctrl, {"op": "ready", "ok": True, "pid": os.getpid()})
    children: set[int] = set()
    try:
        _serve(ctrl, (wake_r, wake_w), children)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _serve(ctrl: socket.socket, wake: tuple[int, int], children: set[int]) -> None:
    watched: list[socket.socket | int] = [ctrl, wake[0]]
    while True:
        try:
            readable, _, _ = select.select(watched, [], [])
        except InterruptedError:
            continue
        if wake[0] in readable:
            try:
                while os.read(wake[0], 512):
                    pass
            except BlockingIOError:
                pass
        _reap(ctrl, children)
        if ctrl not in readable:
            continue
        message, fds, _, _ = socket.recv_fds(ctrl, MAX_MESSAGE, 2)
        if not message:
            return  # the evaluator is gone
        request = json.loads(message)
        if request.get("op") != "fork" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            if request.get("op") == "quit":
                return
            continue
        try:
            pid = os.fork()
        except OSError as e:  # out of processes or memory: this request fails, the zygote stays
            for fd in fds:
                os.close(fd)
            _send(ctrl, {"op": "fork-failed", "error": f"fork failed: {e.strerror}"})
            continue
        if pid == 0:
            _child(ctrl, wake, fds, str(request.get("boot", "worker")))
        for fd in fds:
            os.close(fd)
        children.add(pid)
        pidfd = os.pidfd_open(pid)
        try:
            _send(ctrl, {"op": "forked", "pid": pid}, (pidfd,))
        finally:
            os.close(pidfd)


def _reap(ctrl: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send(ctrl, {"op": "exit", "pid": pid, "status": os.waitstatus_to_exitcode(status)})


def _child(ctrl: socket.socket, wake: tuple[int, int], fds: list[int], boot: str) -> None:
    """The forked worker: shed the zygote, then serve one program; never returns to the zygote loop."""
    status = 0
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        ctrl.close()
        for fd in wake:
            os.close(fd)
        os.setsid()  # its own process group: the evaluator's kill can never hit the zygote
        from scriptrl.sandbox import lockdown, protocol, worker

        rfd, wfd = worker.channel_at_3_and_4(fds[0], fds[1])
        protocol.write_frame(wfd, {"op": "ready", "ok": True})
        if boot == "trace":
            from scriptrl.sandbox import trace_worker

            trace_worker.serve_forked(rfd, wfd, lockdown.FORKED)
        else:
            worker.serve(rfd, wfd, lockdown.FORKED)
    except BaseException:
        status = 1
    finally:
        os._exit(status)


if __name__ == "__main__":
    main()
