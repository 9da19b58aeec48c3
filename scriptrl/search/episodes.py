"""Where the search's episodes come from: the training stream, played once and stored.

``SeedStream`` hands out fresh training-stream seeds (``SeedSplits.train``); its position is part
of the saved search state, so a resumed run draws the same seeds again. ``EpisodeBank`` plays
programs on seeds through the executor and records each batch as one evaluation row (split
``train``; stage ``cheap`` for races and tuning confirmations, ``full`` for a leader's
confirmation). Before playing, it looks for the episodes in the store: evaluations are
deterministic given (program, seed), so a replayed round after a crash costs nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from scriptrl.evaluate.executors import EvalJob, Executor
from scriptrl.search.racing import Played
from scriptrl.seeds import SeedSplits
from scriptrl.store import RunStore

TRAIN_SPLIT = "train"


@dataclass
class SeedStream:
    splits: SeedSplits
    position: int = 0

    def draw(self, n: int) -> list[int]:
        seeds = self.splits.train(self.position, n)
        self.position += n
        return seeds


def played_from_digest(entry: dict) -> Played:
    tail = entry.get("tail") or []
    spread = len({repr(t.get("obs")) for t in tail if isinstance(t, dict)})
    ret = entry.get("return")
    return Played(
        int(entry["seed"]),
        float(ret) if ret is not None else float("-inf"),
        int(entry.get("length") or 0),
        spread,
    )


class EpisodeBank:
    def __init__(self, store: RunStore, executor: Executor, env, width: int | None = None) -> None:
        self.store, self.executor, self.env = store, executor, env
        self.width = width  # evaluations in flight at once (None: the executor's own)
        self._seen: dict[int, tuple[int, dict[int, Played]]] = {}  # pid -> (last row id read, episodes)

    def stored(self, pid: int) -> dict[int, Played]:
        """Every training episode stored for ``pid``, by seed (a later row wins). Read from the
        store incrementally: a leader collects dozens of evaluation rows and is asked for at
        every race chunk it plays in, and decoding all of them each time cost 60 ms a call after
        300 s of LunarLander, growing with the run. Rows only ever get added, with growing ids."""
        last, have = self._seen.get(pid, (0, {}))
        for row in self.store.evaluations_after(pid, TRAIN_SPLIT, last):
            for entry in row["digest"] or []:
                have[int(entry["seed"])] = played_from_digest(entry)
            last = max(last, int(row["id"]))
        self._seen[pid] = (last, have)
        return dict(have)

    def play(self, requests: list[tuple[int, str, list[int]]], stage: str = "cheap") -> list[list[Played]]:
        """Episodes of each (program id, source, seeds) request, in request order."""
        out: list[list[Played]] = [[] for _ in requests]
        todo: list[int] = []
        for k, (pid, _, seeds) in enumerate(requests):
            have = self.stored(pid)
            if all(s in have for s in seeds):
                out[k] = [have[s] for s in seeds]
            else:
                todo.append(k)
        jobs = [EvalJob(requests[k][1], self.env, tuple(requests[k][2]), TRAIN_SPLIT) for k in todo]
        step = self.width or len(jobs) or 1
        results = [r for i in range(0, len(jobs), step) for r in self.executor.map(jobs[i : i + step])]
        for k, res in zip(todo, results, strict=True):
            pid = requests[k][0]
            with self.store.transaction():
                self.store.add_evaluation(pid, TRAIN_SPLIT, stage, res)
                self.store.set_program_status(pid, "evaluated")
            out[k] = [
                played_from_digest({"seed": e.seed, "return": e.ret, "length": e.length, "tail": e.tail})
                for e in res.episodes
            ]
        return out

    def score(self, sources: list[str], seeds: list[int]) -> tuple[list[float], int]:
        """Mean returns of unstored programs (a tuning generation) on shared seeds, and the env steps."""
        jobs = [EvalJob(s, self.env, tuple(seeds), TRAIN_SPLIT) for s in sources]
        step = self.width or len(jobs) or 1
        results = [r for i in range(0, len(jobs), step) for r in self.executor.map(jobs[i : i + step])]
        scores = [r.mean - 1e-6 if r.failures else r.mean for r in results]
        return scores, sum(r.env_steps for r in results)
