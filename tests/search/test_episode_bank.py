"""The episode bank reads stored episodes incrementally; it must see exactly what the store holds."""

from __future__ import annotations

from scriptrl.envs import resolve_env
from scriptrl.evaluate import EvalConfig, evaluate, release_spare_workers
from scriptrl.evaluate.executors import run_jobs
from scriptrl.search.episodes import TRAIN_SPLIT, EpisodeBank
from scriptrl.store import RunStore

GOOD = "def policy(obs):\n    return 1 if obs[2] + 0.5 * obs[3] > 0 else 0\n"
POOR = "def policy(obs):\n    return 0\n"


class CountingExecutor:
    workers, on_this_machine = 1, True

    def __init__(self) -> None:
        self.jobs = 0

    def map(self, jobs):
        self.jobs += len(jobs)
        return run_jobs(jobs, EvalConfig())

    def close(self) -> None:
        release_spare_workers()


def test_stored_episodes_follow_every_new_row_and_later_rows_win(tmp_path):
    env = resolve_env("CartPole-v1")
    store = RunStore.create(tmp_path / "run", {"env": "CartPole-v1"})
    pid = store.add_program(GOOD, "h", [], "test", "init", 1.0, 0, 0)
    ex = CountingExecutor()
    bank = EpisodeBank(store, ex, env)
    try:
        first = bank.play([(pid, GOOD, [11, 12, 13])])[0]
        assert ex.jobs == 1 and [p.seed for p in first] == [11, 12, 13]
        assert bank.play([(pid, GOOD, [12, 13])])[0] == first[1:] and ex.jobs == 1  # found, not replayed
        # A row written behind the bank's back (seed 13 again, another return): the bank sees it.
        other = evaluate(POOR, env, [13, 14], EvalConfig(), split=TRAIN_SPLIT)
        store.add_evaluation(pid, TRAIN_SPLIT, "cheap", other)
        seen = bank.stored(pid)
        assert seen == EpisodeBank(store, ex, env).stored(pid)  # what a fresh read finds
        assert seen[13].ret == other.returns[0] != first[2].ret and seen[14].ret == other.returns[1]
        assert seen[11] == first[0]
        seen.clear()  # the caller's copy; the bank's own record is untouched
        assert set(bank.stored(pid)) == {11, 12, 13, 14}
        assert bank.play([(pid, GOOD, [11, 14])])[0][1].ret == other.returns[1] and ex.jobs == 1
    finally:
        ex.close()
        store.close()
