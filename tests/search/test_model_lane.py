"""The model lane (search/model_lane.py): a slow model writes beside the search, never in its way.

The runs use a test double for the model (the offline mutator behind a delay, marked slow, its
programs labelled as a model's): what is checked is the schedule, which a real model would only
make slower to test. tests/generators/llm/test_llm_e2e.py runs the real embedded model through
the same lane.
"""

from __future__ import annotations

import threading
import time

import pytest

from scriptrl.generators.base import GeneratorBase, GeneratorCall
from scriptrl.generators.offline import OfflineMutator
from scriptrl.search.model_lane import ModelLane


class SlowModel(GeneratorBase):
    """The offline mutator behind ``delay`` seconds, as a model would be; ``echo``: it returns
    its parent unchanged but for a comment (what a weak model often does)."""

    name = "fakemodel"
    slow = True

    def __init__(self, delay: float, echo: bool = False) -> None:
        self.delay, self.echo = delay, echo
        self.inner = OfflineMutator()
        self.threads: set[str] = set()
        self.answered = 0

    def _as_model(self, c):
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        self.answered += 1
        if c is not None:
            c.generator = f"fakemodel.{c.generator.split('.')[-1]}"
            c.call = GeneratorCall(self.delay, 100, 20, model="fake")
        return c

    def initial(self, ctx, n, temperature, rng):
        return [self._as_model(c) for c in self.inner.initial(ctx, n, temperature, rng)]

    def mutate(self, ctx, parent, temperature, rng):
        if self.echo:
            from scriptrl.generators.base import Candidate

            same = Candidate(
                "# the same again\n" + parent.source, (parent.id,), "x.mutate", "structural", 1.0
            )
            return self._as_model(same)
        return self._as_model(self.inner.mutate(ctx, parent, temperature, rng))

    def crossover(self, ctx, a, b, temperature, rng):
        return self._as_model(self.inner.crossover(ctx, a, b, temperature, rng))


def _run(tmp_path, gen, **overrides):
    from scriptrl.evaluate.executors import LocalExecutor
    from scriptrl.search.config import TrainConfig
    from scriptrl.search.loop import Search
    from scriptrl.search.portfolio import Portfolio
    from scriptrl.store import RunStore

    options = dict(
        env="CartPole-v1",
        run_dir=str(tmp_path / "run"),
        max_iterations=4,
        initial_programs=6,
        children_per_iteration=4,
        target=10_000,
        workers=1,
    )
    cfg = TrainConfig(**{**options, **overrides}).check()
    store = RunStore.create(cfg.run_dir, cfg.to_dict())
    executor = LocalExecutor(cfg.workers)
    t0 = time.monotonic()
    try:
        search = Search(cfg, store, executor, Portfolio([gen]))
        search.run()
        out = {
            "wall": time.monotonic() - t0,
            "search": search,
            "programs": store.programs(),
            "calls": store.calls(),
            "events": store.events(),
        }
    finally:
        executor.close()
        store.close()
    return out


def _events(run, kind):
    return [e["data"] for e in run["events"] if e["kind"] == kind]


@pytest.mark.slow
def test_the_search_never_waits_for_a_slow_model_and_abandons_its_calls_at_the_end(tmp_path):
    gen = SlowModel(30.0)  # slower than the whole run
    run = _run(tmp_path, gen, max_iterations=3)
    assert run["search"].iteration == 3
    assert run["wall"] < 25.0  # the rounds did not wait for a single 30 s call
    abandoned = _events(run, "llm_abandoned")
    assert abandoned and abandoned[0]["calls"] >= 1
    stored = [c for c in run["calls"] if (c["error"] or "").startswith("abandoned: the run ended after")]
    assert len(stored) == abandoned[0]["calls"] and all(c["model"] == "fakemodel" for c in stored)
    assert not any(p["generator"].startswith("fakemodel.") for p in run["programs"])
    # the offline mutator wrote the rounds; the model's call ran off the search's thread
    assert any(p["generator"].startswith("offline.") for p in run["programs"])
    assert gen.threads and threading.current_thread().name not in gen.threads
    summary = _events(run, "model_lane")[-1]
    assert summary["programs_joined"] == 0 and summary["champion_by_model"] is False


@pytest.mark.slow
def test_what_the_model_writes_joins_the_search_as_it_arrives(tmp_path):
    gen = SlowModel(0.3)
    run = _run(tmp_path, gen, max_iterations=8)
    by_model = [p for p in run["programs"] if p["generator"].startswith("fakemodel.")]
    assert by_model, "no model program reached the store"
    assert {p["generator"] for p in by_model} <= {"fakemodel.init", "fakemodel.mutate"}
    assert any(p["generator"] == "fakemodel.init" for p in by_model)  # its own first programs
    # every model call is stored with its tokens; some were raced on arrival (iterations 1..8)
    model_calls = [c for c in run["calls"] if c["model"] == "fake"]
    assert model_calls and all(c["prompt_tokens"] == 100 for c in model_calls)
    assert any(p["iteration"] >= 1 and p["status"] != "new" for p in by_model)
    joined = [d["program"] for d in _events(run, "model_program_joined")]
    ids = {p["id"]: p for p in run["programs"]}
    assert all(ids[pid]["generator"].startswith("fakemodel.") for pid in joined)
    summary = _events(run, "model_lane")[-1]
    assert summary["programs_joined"] == len(joined) and summary["programs_raced"] >= len(joined)
    assert summary["calls_started"] >= len(model_calls)
    champ = run["search"].champion.id
    assert summary["champion_by_model"] == (champ in joined)


@pytest.mark.slow
def test_a_reply_identical_to_its_parent_is_stored_as_a_call_and_not_evaluated(tmp_path):
    gen = SlowModel(0.2, echo=True)
    run = _run(tmp_path, gen, max_iterations=6, initial_programs=2)
    unchanged = [
        c for c in run["calls"] if (c["error"] or "").startswith("unchanged: the reply repeats program")
    ]
    assert unchanged and all(not c["ok"] and c["program_id"] is None for c in unchanged)
    assert all(c["prompt_tokens"] == 100 for c in unchanged)  # its tokens still count
    echoed = [p for p in run["programs"] if p["source"].startswith("# the same again")]
    assert not echoed  # never stored as a program, never evaluated
    assert _events(run, "model_lane")[-1]["unchanged_replies"] == len(unchanged)


class _Measured(GeneratorBase):
    name, slow = "m", True

    def __init__(self, per_call: float | None, cap: int) -> None:
        self.per_call, self.cap = per_call, cap

    @property
    def seconds_per_call(self) -> float | None:
        return self.per_call

    @property
    def max_in_flight(self) -> int:
        return self.cap


class _Cfg:
    initial_programs = 8


class _StubSearch:
    cfg = _Cfg()


def test_calls_in_flight_follow_the_measured_seconds_per_call():
    def width(per_call, cap, iteration_seconds):
        lane = ModelLane(_StubSearch(), [_Measured(per_call, cap)])  # type: ignore[arg-type]
        lane._iteration_seconds = iteration_seconds
        return lane.width()

    assert width(None, 4, [2.0]) == 1  # unmeasured: one call, to measure it
    assert width(10.0, 4, []) == 1  # no iteration measured yet
    assert width(10.0, 4, [2.0, 2.0, 2.5]) == 4  # 10 s calls, 2 s rounds: 5 wanted, 4 allowed
    assert width(5.0, 8, [2.0]) == 3  # a program about every round
    assert width(1.0, 8, [2.0]) == 1  # a quick model keeps up with one call
    assert width(30.0, 1, [1.0]) == 1  # the embedded server answers one request at a time


def test_the_live_view_shows_the_lane_speed_calls_in_flight_and_what_joined():
    from scriptrl.glassbox.report.progress import model_line

    snap = {
        "seconds_per_call": 31.2,
        "calls_in_flight": 1,
        "model_joined": 2,
        "model_raced": 5,
        "activity": "racing a model program",
    }
    line = model_line(snap)
    assert "model: 31.2 s per call · 1 in flight" in line
    assert "its programs: 5 raced, 2 joined" in line and "this round" not in line
    assert line.endswith("evaluators: racing a model program")


class TimedModel(SlowModel):
    """A slow model that reports its speed once it has answered, as the real generator does."""

    @property
    def seconds_per_call(self) -> float | None:
        return self.delay if self.answered else None


@pytest.mark.slow
def test_a_resumed_run_continues_the_lane_instead_of_starting_it_again(tmp_path):
    """Resumed, the lane numbers its calls on from the saved count: its first programs are not
    asked for twice, no call seed repeats, and its summary keeps what the model contributed."""
    from scriptrl.evaluate.executors import LocalExecutor
    from scriptrl.search.config import TrainConfig
    from scriptrl.search.loop import Search
    from scriptrl.search.portfolio import Portfolio
    from scriptrl.store import RunStore

    first = _run(tmp_path, TimedModel(0.2), max_iterations=4)
    before = _events(first, "model_lane")[-1]
    assert before["calls_started"] >= 2
    saved = first["search"].lane.to_state()
    assert saved["started"] == before["calls_started"] and saved["seconds_per_call"] is not None

    store = RunStore.open(tmp_path / "run")
    cfg = TrainConfig.from_dict(store.config)
    cfg.max_iterations = 7
    executor = LocalExecutor(1)
    gen = TimedModel(0.2)
    try:
        search = Search(cfg.check(), store, executor, Portfolio([gen]))
        search._restore()
        lane = search.lane
        assert lane is not None
        assert lane.started == saved["started"] and lane.joined == saved["joined"]
        assert lane.seconds_per_call == saved["seconds_per_call"]  # sized before any new call
        jobs = [lane._plan() for _ in range(3)]
        assert all(j is not None and j.parent is not None for j in jobs)  # no first programs again
        seeds = {j.seed for j in jobs if j is not None}
        assert not seeds & {f"{cfg.seed}:lane:{n}" for n in range(saved["started"])}
    finally:
        executor.close()
        store.close()
