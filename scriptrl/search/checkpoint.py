"""The search's saved state: everything a resumed run needs to replay the same rounds.

Saved after every iteration (and after the first programs); the episodes and evaluations
themselves live in the run store, so a resumed run finds them by hash and seed instead of
paying for them twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scriptrl.search.champion import Champion
from scriptrl.search.population import Population
from scriptrl.search.temperature import Temperature

if TYPE_CHECKING:
    from scriptrl.search.loop import Search


def save_state(s: Search) -> None:
    s.steps_mark = s.search_env_steps()
    s.store.save_state(
        {
            "iteration": s.iteration,
            "population": s.population.to_state(),
            "temperature": s.temperature.to_state(),
            "champion": s.champion.to_dict() if s.champion else None,
            "best_dev": s.best_dev,
            "best_dev_id": s.best_dev_id,
            "seconds": s.seconds(),
            "portfolio": s.portfolio.to_state(),
            "finished": s.stop_reason,
            "stream": s.stream.position,
            "effort": s.effort.to_state(),
            "idle_rounds": s.idle_rounds,
            "tuning": s.tuning.to_state(),
            "dense": s.dense.to_state() if s.dense is not None else None,
            "gain": s.gain,
            "env_steps": s.steps_mark,
            "lane": s.lane.to_state() if s.lane is not None else None,
        }
    )


def restore_state(s: Search) -> bool:
    """Load the saved state into ``s``; False when the run has none yet (a fresh start)."""
    state = s.store.load_state()
    if not state:
        return False
    s.iteration = state["iteration"]
    s.population = Population.from_state(state["population"])
    s.temperature = Temperature.from_state(state["temperature"])
    s.champion = Champion.from_dict(state["champion"])
    s.best_dev = state["best_dev"] if state["best_dev"] is not None else float("-inf")
    s.best_dev_id = state.get("best_dev_id")
    s.seconds_before = state["seconds"]
    s.portfolio.restore(state.get("portfolio") or {})
    s.stop_reason = state.get("finished")
    s.stream.position = int(state.get("stream") or 0)
    s.effort.restore(state.get("effort") or {})
    s.idle_rounds = int(state.get("idle_rounds") or 0)
    s.gain = float(state.get("gain") or 0.0)
    # the mark the next round counts its steps from (a state saved before it was kept: now)
    s.steps_mark = int(state["env_steps"]) if state.get("env_steps") is not None else None
    s.tuning.restore(state.get("tuning") or {})
    if s.lane is not None:
        s.lane.restore(state.get("lane") or {})
    if s.dense is not None:
        s.dense.restore(state.get("dense") or {})
    s.store.add_event("resume", {"iteration": s.iteration})
    return True
