"""A slow generator's share of each round follows its measured speed and the time left.

The run below uses a test double for the model (the offline mutator behind a delay, marked slow,
its programs labelled as a model's): what is checked is the search's pacing, which a real model
would only make slower to test. tests/test_llm_e2e.py runs the real embedded model through the
same path, and the 6-iteration acceptance run with it is recorded in the report of this change.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from scriptrl.generators.base import GeneratorBase, GeneratorCall
from scriptrl.generators.llm.backends import DEFAULT_TIMEOUT, CallError, CommandBackend, Redactor
from scriptrl.generators.llm.prompts import Messages
from scriptrl.generators.offline import OfflineMutator
from scriptrl.search.pacing import (
    DEFAULT_ROUND_SECONDS,
    ModelTime,
    ProgramClock,
    model_share,
    plan_round,
    predicted_seconds,
    round_allowance,
)


def test_a_24_second_model_writes_two_of_eight_children_in_a_minute():
    assert model_share(8, 60.0, 24.0) == 2
    assert model_share(8, 60.0, 5.0) == 8  # a quick model writes them all
    assert model_share(8, 60.0, 90.0) == 0  # slower than a round: not this round
    assert model_share(8, 60.0, None) == 8  # not measured yet: as before
    plan = plan_round(8, 60.0, 60.0, 24.0)
    assert (plan.model_programs, plan.fast_programs) == (2, 6)
    assert plan.fits(24.0, 24.0) and not plan.fits(40.0, 24.0)


def test_a_model_slower_than_a_round_writes_every_few_rounds_and_keeps_the_run_on_time():
    account = ModelTime()
    first = account.open(60.0, None)
    account.pay(83.0)  # the first program measured the model: 83 s
    calls, spent = 1, 83.0
    for _ in range(6):
        budget = account.open(60.0, 190.0)  # then it slowed to 190 s per program
        n = model_share(8, budget, 190.0)
        for _ in range(n):
            account.pay(190.0)
        calls, spent = calls + n, spent + 190.0 * n
    assert first == 60.0 and 1 < calls < 1 + 6
    assert spent <= 7 * 60.0 + 190.0  # about the rounds' allowance, overdrawn by one call at most
    assert account.balance <= 60.0 + 190.0


def test_the_time_budget_is_spread_over_the_rounds_still_to_come():
    assert round_allowance(None, None, 0.0, 6, 0) == DEFAULT_ROUND_SECONDS
    # 600 s budget, 120 used, rounds 3..6 and this one left: 480 / 4
    assert round_allowance(None, 600.0, 120.0, 6, 3) == pytest.approx(480.0 / 4)
    assert round_allowance(30.0, 600.0, 120.0, 6, 3) == 30.0
    assert round_allowance(None, 100.0, 150.0, None, 4) == 0.0
    assert round_allowance(None, 100.0, 70.0, None, 4) == pytest.approx(30.0)
    # an iteration count predicts the model's writing time
    assert predicted_seconds(6, None, 24.0, 8) == 6 * 60.0  # it writes about a round's allowance
    assert predicted_seconds(6, None, 5.0, 8) == 6 * 8 * 5.0  # or all its children, if quicker
    assert predicted_seconds(6, None, None, 8) is None


def test_the_clock_follows_recent_programs():
    clock = ProgramClock(keep=3)
    assert clock.seconds_per_program is None
    for s in (100.0, 20.0, 24.0, 26.0):
        clock.add(s)
    assert clock.seconds_per_program == 24.0  # the first, slow one has left the window


def test_a_command_backend_without_a_timeout_is_still_bounded():
    backend = CommandBackend([sys.executable, "-c", "import time; time.sleep(30)"], None, Redactor())
    assert backend.timeout == DEFAULT_TIMEOUT
    backend.timeout = 0.5  # the same bound, shortened so the test does not wait two minutes
    t0 = time.monotonic()
    with pytest.raises(CallError, match="did not answer within"):
        backend.complete(Messages("s", (("user", "u"),)), 0.5, 10, None)
    assert time.monotonic() - t0 < 5
    assert subprocess.run([sys.executable, "-c", "pass"], timeout=10).returncode == 0


class SlowModel(GeneratorBase):
    """Stands in for a model that takes ``delay`` seconds per program (a test double)."""

    name = "fakemodel"
    slow = True

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.inner = OfflineMutator()
        self.calls = 0
        self.threads: set[str] = set()
        self.facts: list = []  # what each mutation's parent came with

    def _as_model(self, c):
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        self.calls += 1
        if c is not None:
            c.generator = f"fakemodel.{c.generator.split('.')[-1]}"
            c.call = GeneratorCall(self.delay, 10, 10, model="fake")
        return c

    def initial(self, ctx, n, temperature, rng):
        return [self._as_model(c) for c in self.inner.initial(ctx, n, temperature, rng)]

    def initial_stream(self, ctx, n, temperature, rng):
        for c in self.inner.initial(ctx, n, temperature, rng):
            yield self._as_model(c)

    def mutate(self, ctx, parent, temperature, rng):
        self.facts.append(parent.facts)
        return self._as_model(self.inner.mutate(ctx, parent, temperature, rng))

    def crossover(self, ctx, a, b, temperature, rng):
        return self._as_model(self.inner.crossover(ctx, a, b, temperature, rng))


@pytest.mark.slow
def test_a_slow_model_writes_what_fits_its_round_and_the_offline_mutator_the_rest(tmp_path):
    from scriptrl.evaluate.executors import LocalExecutor
    from scriptrl.search.config import TrainConfig
    from scriptrl.search.loop import Search
    from scriptrl.search.portfolio import Portfolio
    from scriptrl.store import RunStore

    cfg = TrainConfig(
        env="CartPole-v1",
        run_dir=str(tmp_path / "run"),
        max_iterations=3,
        initial_programs=8,
        children_per_iteration=6,
        tune_every=0,
        target=10_000,
        workers=1,
        llm_round_seconds=2.5,
        model_lane=False,  # the round schedule (search/pacing.py); the lane: tests/search/test_model_lane.py
    ).check()
    gen = SlowModel(1.0)
    store = RunStore.create(cfg.run_dir, cfg.to_dict())
    executor = LocalExecutor(cfg.workers)
    snaps: list[dict] = []
    t0 = time.monotonic()
    try:
        search = Search(cfg, store, executor, Portfolio([gen]), progress=snaps.append)
        search.run()
        programs = store.programs()
    finally:
        executor.close()
        store.close()
    wall = time.monotonic() - t0
    by_model = [p for p in programs if p["generator"].startswith("fakemodel.")]
    offline = [p for p in programs if p["generator"].startswith("offline.")]
    first = [p for p in by_model if p["iteration"] == 0]
    # 2.5 s at 1 s per program: the model writes 2 first programs (the second ends past 2 s...)
    # and then stops; the offline mutator makes up the population and writes the other children.
    assert 2 <= len(first) <= 3 and gen.calls <= 3 + 3 * 3
    assert all(sum(p["iteration"] == k for p in by_model) <= 3 for k in (1, 2, 3))
    assert any(p["generator"] == "offline.mutate" or p["generator"] == "offline.crossover" for p in offline)
    assert any(p["generator"] == "offline.init" for p in offline)
    assert search.iteration == 3
    # the live view was told the model's speed and its share of the round
    live = [s for s in snaps if s.get("model_programs") is not None]
    last = live[-1]
    # 2 at 1 s per program in a 2.5 s round; 3 when an earlier round left time over (the balance
    # is capped at a round plus one program, 3.5 s), which a loaded machine's timing can cause
    assert 2 <= last["model_programs"] <= 3 and 1 <= last["fast_programs"] <= 4  # islands with members
    assert live[-1]["seconds_per_program"] == pytest.approx(1.0, abs=0.5)
    # the model's parents came with their traced worst episodes and lineage (search/parent_context.py)
    assert gen.facts and all(f is not None for f in gen.facts)
    traced = [t for f in gen.facts for t in f.traced]
    assert traced and all(
        st.line is not None and st.code.startswith("return") for t in traced for st in t.steps
    )
    assert any(f.lineage or f.inspirations for f in gen.facts)
    # the whole run: at most a round's allowance of model writing per round, plus evaluation
    assert wall < 4 * 2.5 + 4 * 1.0 + 60


def test_the_live_view_shows_the_model_speed_calls_in_flight_and_the_round_split():
    from scriptrl.glassbox.report.progress import model_line

    snap = {
        "seconds_per_call": 24.04,
        "calls_in_flight": 1,
        "model_programs": 2,
        "fast_programs": 6,
        "round_seconds": 60.0,
        "activity": "tuning constants while the model writes",
        "predicted_model_seconds": 288.0,
    }
    line = model_line(snap)
    assert "model: 24.0 s per call · 1 in flight" in line
    assert "this round 2 by the model, 6 offline (60 s of model time)" in line
    assert "evaluators: tuning constants while the model writes" in line and "about 288 s" in line
    assert model_line({"iteration": 1}) == ""  # no model, no line
