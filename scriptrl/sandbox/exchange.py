"""What passes between the evaluator and any worker: the act exchange (written once over a
worker's ``send`` and ``recv``), its reply, and the two ways it fails."""

from __future__ import annotations

from dataclasses import dataclass


class WorkerFailure(Exception):
    """The worker hung, crashed or broke the protocol; ``reason`` says which in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProgramLoadError(Exception):
    """The program raised or lacked an entry point while loading inside the sandbox."""

    def __init__(self, message: str, isolation: dict[str, str]) -> None:
        super().__init__(message)
        self.isolation = isolation


@dataclass
class Reply:
    """One batch's answer: an action per observation, and (tracing worker) a trace per action.

    Both are the worker's own words: the caller validates every action and trace before use.
    """

    actions: list
    traces: list | None = None


class _Exchange:
    """The act exchange, written once over a worker's ``send`` and ``recv``."""

    traced = False  # the tracing worker precedes each reply of actions with a frame of traces
    codec: dict = {}

    def request(
        self, ids: list[int], observations: list, new: list | None = None, end: list | None = None
    ) -> None:
        """Send one batch; ``new``/``end`` start and drop a ``class Policy``'s per-episode instances."""
        from scriptrl.sandbox.actions import encode_observations

        obs_header, payload = encode_observations(self.codec, observations)
        header: dict = {"op": "act", "ids": list(ids)}
        if obs_header is not None:
            header["obs"] = obs_header
        if new is not None:
            header["new"], header["end"] = new, list(end or ())
        self.send(header, payload)  # type: ignore[attr-defined]

    def reply(self, n: int, timeout: float) -> Reply:
        """The answer to the batch sent last (``n`` observations); WorkerFailure when there is none."""
        traces = self.recv(timeout).get("t") if self.traced else None  # type: ignore[attr-defined]
        actions = self.recv(timeout).get("a")  # type: ignore[attr-defined]
        if not isinstance(actions, list) or len(actions) != n:
            self.kill()  # type: ignore[attr-defined]
            raise WorkerFailure("protocol: the worker's reply does not hold one action per episode")
        if self.traced and (not isinstance(traces, list) or len(traces) != n):
            traces = [None] * n
        return Reply(actions, traces)

    def act(
        self,
        ids: list[int],
        observations: list,
        timeout: float,
        new: list | None = None,
        end: list | None = None,
    ) -> Reply:
        """One exchange: these observations in, one (unvalidated) action per observation out."""
        self.request(ids, observations, new, end)
        return self.reply(len(ids), timeout)
