"""A resumed run credits a replayed round the env steps it cost the first time (the effort split
that chooses between structure and tuning must not see a replayed round as free)."""

import math

import pytest

import scriptrl
from scriptrl.store import RunStore


@pytest.mark.slow
def test_a_round_replayed_on_resume_credits_the_steps_it_cost(tmp_path):
    """Kill after an iteration's work was stored but before its state was saved: the resumed run
    replays the round from the store (no new episodes), and must credit it the same steps."""
    kw = dict(target=1e9, seed=3, workers=2, children_per_iteration=4, dense_popsize_factor=4.0)
    run = tmp_path / "run"
    scriptrl.train("CartPole-v1", run_dir=str(run), max_iterations=2, **kw)
    store = RunStore.open(run)
    at_two = store.load_state()
    store.close()
    assert at_two is not None and at_two["env_steps"] > 0
    once = scriptrl.train(resume=str(run), max_iterations=4)
    store = RunStore.open(run)
    after = store.load_state()
    store.save_state(at_two)  # as if iterations 3 and 4 had run but their states were never saved
    store.close()
    assert after is not None and sum(after["effort"]["rounds"].values()) == 4
    twice = scriptrl.train(resume=str(run), max_iterations=4)
    store = RunStore.open(run)
    replayed = store.load_state()
    store.close()
    assert replayed is not None
    assert replayed["effort"] == after["effort"]  # the same kinds, gains and steps credited
    assert replayed["tuning"] == after["tuning"]
    assert replayed["dense"] == after["dense"]  # the dense lane's campaign replays to the same state
    assert twice.env_steps == once.env_steps and math.isfinite(twice.best_dev)
