"""``--no-evolution``: the first programs only, then every round tunes their constants.

The ablation of issue 15 ("the model's first programs only, tuned, no evolution") needs a real
mode of the search: no generator writes a child after the first programs, CMA-ES still tunes
them, and a slow generator (a language model) writes first programs only, with no model lane and
no offline programs filling in. Real CartPole-v1 episodes in the real sandbox; the slow
generator is the offline mutator's first programs behind a delay, labelled as a model's
(tests/generators/llm/test_llm_e2e.py runs the real embedded model).
"""

from __future__ import annotations

import json
import time

import pytest

from scriptrl.errors import UserError
from scriptrl.generators.base import GeneratorBase, GeneratorCall
from scriptrl.generators.offline import OfflineMutator
from scriptrl.search.config import TrainConfig


class SlowFirstWriter(GeneratorBase):
    """First programs ``delay`` seconds each, as a model writes them; a child is an error here."""

    name = "fakemodel"
    slow = True

    def __init__(self, delay: float, sources: list[str] | None = None) -> None:
        self.delay, self.sources = delay, sources
        self.inner = OfflineMutator()
        self.asked: list[str] = []

    def _as_model(self, c):
        time.sleep(self.delay)
        c.generator = "fakemodel.init"
        c.call = GeneratorCall(self.delay, 100, 20, model="fake")
        return c

    def initial(self, ctx, n, temperature, rng):
        self.asked.append("initial")
        if self.sources is not None:
            from scriptrl.generators.base import Candidate

            firsts = [Candidate(s, (), "x.init", "init", temperature) for s in self.sources[:n]]
        else:
            firsts = self.inner.initial(ctx, n, temperature, rng)
        return [self._as_model(c) for c in firsts]

    def mutate(self, ctx, parent, temperature, rng):
        self.asked.append("mutate")
        raise AssertionError("--no-evolution asked the model for a child")

    def crossover(self, ctx, a, b, temperature, rng):
        self.asked.append("crossover")
        raise AssertionError("--no-evolution asked the model for a child")


def _search(tmp_path, generators, **overrides):
    from scriptrl.evaluate.executors import LocalExecutor
    from scriptrl.search.loop import Search
    from scriptrl.search.portfolio import Portfolio
    from scriptrl.store import RunStore

    options = dict(
        env="CartPole-v1",
        run_dir=str(tmp_path / "run"),
        max_iterations=3,
        initial_programs=4,
        target=10_000,
        workers=1,
        evolve=False,
    )
    cfg = TrainConfig(**{**options, **overrides}).check()
    store = RunStore.create(cfg.run_dir, cfg.to_dict())
    executor = LocalExecutor(cfg.workers)
    try:
        search = Search(cfg, store, executor, Portfolio(generators))
        search.run()
        return search, store.programs(), store.calls(), store.events()
    finally:
        executor.close()
        store.close()


def test_offline_first_programs_are_only_tuned(tmp_path, cli):
    p = cli(
        "train",
        "CartPole-v1",
        "--no-evolution",
        "--max-iterations",
        "3",
        "--target",
        "10000",
        "--workers",
        "1",
        "--run-dir",
        str(tmp_path / "run"),
        "--json",
    )
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["iterations"] == 3 and summary["best_holdout"] is not None
    from scriptrl.store import RunStore

    with RunStore.open(tmp_path / "run") as store:
        assert store.config["evolve"] is False
        kinds = {p["generator"] for p in store.programs()}
        rounds = [e["data"]["kind"] for e in store.events("round")]
    # the offline generator's first programs, then nothing but CMA-ES outputs of their constants
    assert kinds == {"offline.init", "cma.tune"}
    assert rounds == ["tuning"] * 3


@pytest.mark.slow
def test_a_slow_generator_writes_the_first_programs_alone_and_no_child(tmp_path):
    gen = SlowFirstWriter(0.2)
    search, programs, calls, events = _search(tmp_path, [gen])
    assert search.lane is None  # no model lane: nothing is written beside the rounds
    assert search.iteration == 3
    assert set(gen.asked) == {"initial"}
    by = {p["generator"] for p in programs}
    assert "fakemodel.init" in by and by <= {"fakemodel.init", "cma.tune"}  # no offline filler
    assert sum(p["generator"] == "fakemodel.init" for p in programs) <= 4
    assert [c["model"] for c in calls if c["model"]] == ["fake"] * len([c for c in calls if c["model"]])
    assert all(e["data"]["kind"] == "tuning" for e in events if e["kind"] == "round")


@pytest.mark.slow
def test_first_programs_without_constants_end_the_run(tmp_path):
    gen = SlowFirstWriter(0.0, sources=["def policy(obs):\n    return int(obs[2] + obs[3] > obs[0])\n"])
    search, programs, _, events = _search(tmp_path, [gen], initial_programs=1, max_iterations=50)
    assert search.iteration == 1  # one round found nothing to tune, and no child may be written
    assert "no constants left to tune" in (search.stop_reason or "")
    assert {p["generator"] for p in programs} == {"fakemodel.init"}


def test_no_evolution_needs_tuning():
    with pytest.raises(UserError, match="no-evolution"):
        TrainConfig(env="CartPole-v1", evolve=False, tune_every=0).check()
