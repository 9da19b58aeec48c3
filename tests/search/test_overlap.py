"""The evaluators tune while a slow generator writes: the hand-over itself, then a whole run.

The run uses a test double for the model (the offline mutator behind a delay, marked slow):
what is checked here is the search's scheduling, which a real model would only make slower
to test. tests/generators/llm/test_llm_e2e.py runs the same path with the real embedded model.
"""

from __future__ import annotations

import threading
import time

import pytest

from scriptrl.generators.offline import OfflineMutator
from scriptrl.search.overlap import overlapped


def test_items_arrive_in_order_and_idle_work_fills_the_waits():
    consumed, idles = [], []

    def produce(emit, stopped):
        for k in range(3):
            time.sleep(0.05)
            emit(k)

    def idle():
        idles.append(threading.current_thread().name)
        time.sleep(0.005)
        return True

    overlapped(produce, consumed.append, idle, lambda: False)
    assert consumed == [0, 1, 2]
    assert len(idles) >= 3 and set(idles) == {threading.current_thread().name}  # on the search's thread


def test_stopping_starts_no_new_call_but_keeps_what_was_written():
    started, consumed = [], []

    def produce(emit, stopped):
        for k in range(10):
            if stopped():
                return
            started.append(k)
            time.sleep(0.05)  # a call takes a while
            emit(k)

    overlapped(produce, consumed.append, lambda: False, lambda: len(consumed) >= 2)
    assert consumed == started[: len(consumed)] and len(consumed) >= 2
    assert len(started) <= 3  # at most the one already in flight when the stop came


def test_nothing_to_do_blocks_instead_of_spinning():
    calls = []

    def produce(emit, stopped):
        time.sleep(0.2)
        emit("x")

    overlapped(produce, lambda x: None, lambda: calls.append(1) or False, lambda: False)
    assert len(calls) <= 2


def test_a_writer_error_reaches_the_search():
    def produce(emit, stopped):
        emit(1)
        raise RuntimeError("model backend broke")

    got = []
    with pytest.raises(RuntimeError, match="model backend broke"):
        overlapped(produce, got.append, lambda: False, lambda: False)
    assert got == [1]


class SlowMutator(OfflineMutator):
    """Stands in for a model that takes a while per program (a test double)."""

    name = "slowgen"
    slow = True
    local_threads = 1

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.threads: set[str] = set()

    def _wait(self) -> None:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)

    def initial(self, ctx, n, temperature, rng):
        out = []
        for c in super().initial(ctx, n, temperature, rng):
            self._wait()
            out.append(c)
        return out

    def mutate(self, ctx, parent, temperature, rng):
        self._wait()
        return super().mutate(ctx, parent, temperature, rng)

    def crossover(self, ctx, a, b, temperature, rng):
        self._wait()
        return super().crossover(ctx, a, b, temperature, rng)


@pytest.mark.slow
def test_a_run_with_a_slow_generator_tunes_while_it_writes(tmp_path):
    from scriptrl.evaluate.executors import LocalExecutor
    from scriptrl.search.config import TrainConfig
    from scriptrl.search.loop import Search
    from scriptrl.search.portfolio import Portfolio
    from scriptrl.store import RunStore

    cfg = TrainConfig(
        env="CartPole-v1",
        run_dir=str(tmp_path / "run"),
        max_iterations=2,
        initial_programs=4,
        children_per_iteration=3,
        tune_every=0,
        target=10_000,
        workers=2,
        model_lane=False,  # the round schedule; the model lane: tests/search/test_model_lane.py
    ).check()
    gen = SlowMutator(0.4)
    store = RunStore.create(cfg.run_dir, cfg.to_dict())
    executor = LocalExecutor(cfg.workers)
    widths: list[int] = []
    real_map = executor.map
    executor.map = lambda jobs: widths.append(len(jobs)) or real_map(jobs)  # type: ignore[method-assign]
    try:
        search = Search(cfg, store, executor, Portfolio([gen]))
        assert search._width_beside_model() == 1  # 2 workers, 1 model thread
        search.run()
        tunes = store.events("tune")
        programs = store.programs()
    finally:
        executor.close()
        store.close()
    assert (
        gen.threads and threading.current_thread().name not in gen.threads
    )  # written off the search's thread
    assert tunes and all(t["data"]["why"] == "while the generator writes" for t in tunes)
    written = [p for p in programs if p["generator"] != "cma.tune"]
    assert len(written) >= 4 + 1  # the first programs and this run's children all reached the store
    assert search.iteration == 2 and search.champion is not None
    assert max(widths) <= 3  # tuning used one evaluator at a time; only racing batches are wider


def test_tuning_turns_go_to_the_best_programs_and_skip_fruitless_ones():
    from collections import Counter

    from scriptrl.search.population import Member, Population

    pop = Population.empty(2, 6)
    for pid, score in ((1, 10.0), (2, 50.0), (3, 30.0)):
        pop.islands[pid % 2].offer(Member(pid, score, f"n{pid}"), 6)
    fruitless: Counter[int] = Counter()
    order = []
    for _ in range(5):
        target = pop.next_to_tune(fruitless)
        order.append(target.id)
        fruitless[target.id] += 1
    assert order == [2, 3, 1, 2, 3]
    assert Population.empty(2, 6).next_to_tune(fruitless) is None
