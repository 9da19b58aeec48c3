"""The one place verify (and prove, and diff) ask the sandbox for actions on chosen observations.

Observations are generated in the trusted process and sent in batches to the ordinary
sandbox worker (the same client, codec and action checks as evaluation). Kept small and
alone so a change to the sandbox client is one edit here."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from scriptrl.program import Program
from scriptrl.sandbox.client import WorkerFailure


def _show(obs: Any) -> Any:
    """Plain values; a float32 prints as its shortest form (4.8, not 4.800000190734863), which round-trips."""
    if isinstance(obs, np.ndarray):
        return [float(str(v)) if obs.dtype.kind == "f" else int(v) for v in obs.ravel()]
    if isinstance(obs, tuple | list):
        return [_show(o) for o in obs]
    if isinstance(obs, np.generic):
        return obs.item()
    return obs


class _Asker:
    """A sandboxed worker holding the program; restarted when a fault kills it."""

    def __init__(self, program: Program, codec: dict, seed: int, unsafe: bool, time_limit: float) -> None:
        self.program, self.codec, self.seed, self.unsafe = program, codec, seed, unsafe
        self.time_limit = time_limit
        self.worker = None
        self.isolation: dict[str, str] = {}
        self.stateful = program.entry_kind == "class"
        self.next_id = 0
        self.live_ids: list[int] = []

    def _ensure(self):
        from scriptrl.glassbox.trace import open_worker

        if self.worker is None or (getattr(self.worker, "proc", True) is None):
            self.worker = open_worker(self.program, self.codec, self.seed, unsafe=self.unsafe)
            self.isolation = dict(self.worker.isolation)
            self.live_ids = []
        return self.worker

    def ask(self, observations: list) -> tuple[list, float]:
        """Actions (as the worker encoded them) for ``observations``, and seconds per call."""
        worker = self._ensure()
        n = len(observations)
        ids = list(range(self.next_id, self.next_id + n))
        self.next_id += n
        new = end = None
        if self.stateful:  # a fresh instance per observation, all reset with the same seed
            new = [[i, self.seed] for i in ids]
            end, self.live_ids = self.live_ids, ids
        started = time.perf_counter()
        try:
            reply = worker.act(ids, observations, max(2.0, 4 * self.time_limit * n + 1.0), new=new, end=end)
        except WorkerFailure:
            self.worker = None
            raise
        return reply.actions, (time.perf_counter() - started) / n

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None
