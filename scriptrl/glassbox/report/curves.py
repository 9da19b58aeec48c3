"""Learning curves of a run: best-so-far dev and holdout scores against iteration and env steps.

Curves count *search* env steps (cheap and full dev evaluations and constant tuning), the
budget ``--max-env-steps`` limits; holdout and audit confirmations are counted apart. A
baseline run's curve comes from its dev/holdout evaluations and from any event whose data has
a numeric ``env_steps`` and a ``dev`` and/or ``holdout`` score (a checkpoint).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from scriptrl.store import RunStore

SEARCH_STAGES = ("cheap", "full")
_SEARCH_EVENT_KINDS = {"start", "resume", "stop", "tune", "migration", "promotion"}

Points = list[tuple[float, float]]


@dataclass
class Curve:
    """Best-so-far scores of one run, against iteration and against search env steps."""

    label: str
    dev_by_iteration: Points = field(default_factory=list)
    holdout_by_iteration: Points = field(default_factory=list)
    dev_by_steps: Points = field(default_factory=list)
    holdout_by_steps: Points = field(default_factory=list)
    total_steps: int = 0  # search env steps of the whole run
    last_iteration: int = 0

    def empty(self) -> bool:
        return not (
            self.dev_by_iteration or self.holdout_by_iteration or self.dev_by_steps or self.holdout_by_steps
        )


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def _running_best(points: Points) -> Points:
    out: Points = []
    best = -math.inf
    for x, y in sorted(points, key=lambda p: p[0]):
        if y > best:
            best = y
            out.append((x, y))
    return out


@dataclass
class _StepsSpent:
    """The run's timeline in learning steps: where each dev and holdout score was reached."""

    total: int = 0
    dev: Points = field(default_factory=list)
    holdout: Points = field(default_factory=list)
    at_evaluation: dict[int, int] = field(default_factory=dict)  # evaluation id -> steps spent by then


def _steps_spent(evals: list[dict], events: list[dict], full_ids: set[int]) -> _StepsSpent:
    """Walk search evaluations, tuning rounds and (for a baseline) training interaction in the
    order they were recorded, summing the env steps spent learning."""
    timeline = [(e["created"], e["id"], "eval", e) for e in evals] + [
        (ev["created"], ev["id"], "event", ev) for ev in events
    ]
    timeline.sort(key=lambda t: (t[0], t[2] == "event", t[1]))
    out = _StepsSpent()
    for _, _, what, row in timeline:
        if what == "eval":
            if row["stage"] in SEARCH_STAGES or row["split"] == "train":
                out.total += int(row["env_steps"] or 0)
            out.at_evaluation[row["id"]] = out.total
            if row["id"] in full_ids:
                out.dev.append((out.total, row["mean"]))
        else:
            data = row.get("data") or {}
            if row["kind"] == "tune":
                out.total += int(_num(data.get("env_steps")) or 0)
            elif row["kind"] == "promotion" and _num(data.get("holdout")) is not None:
                x = _num(data.get("env_steps"))  # a baseline records its training steps itself
                out.holdout.append((out.total if x is None else x, data["holdout"]))
    return out


def learning_curve(store: RunStore, label: str) -> Curve:
    """Best dev (full evaluations where there are any) and best confirmed holdout, as they improved."""
    programs = {p["id"]: p for p in store.programs()}
    evals = store.evaluations()
    events = store.events()
    curve = Curve(label)
    selecting = store.selection_split()
    dev_rows = [e for e in evals if e["split"] == selecting and e["mean"] is not None]
    full_dev = [e for e in dev_rows if e["stage"] != "cheap"] or dev_rows
    spent = _steps_spent(evals, events, {e["id"] for e in full_dev})
    checkpoints = [
        ev
        for ev in events
        if ev["kind"] not in _SEARCH_EVENT_KINDS and _num((ev.get("data") or {}).get("env_steps")) is not None
    ]
    if any(_num(ev["data"].get("dev")) is not None for ev in checkpoints):
        spent.dev = []  # the run states its own curve against its own steps: that is the one to draw
    curve.dev_by_steps = _running_best(spent.dev)
    curve.total_steps = spent.total

    dev_iter = []
    for e in full_dev:
        prog = programs.get(e["program_id"])
        if prog is not None:
            dev_iter.append((prog["iteration"], e["mean"]))
    curve.dev_by_iteration = _running_best(dev_iter)
    curve.last_iteration = max(
        [p["iteration"] for p in programs.values()] + [(store.load_state() or {}).get("iteration") or 0]
    )
    promotions = [ev["data"] for ev in events if ev["kind"] == "promotion"]
    hold_iter = [
        (d["iteration"], d["holdout"])
        for d in promotions
        if _num(d.get("iteration")) is not None and _num(d.get("holdout")) is not None
    ]
    if not promotions:  # a baseline without promotions: its holdout evaluations, in order
        for e in (e for e in evals if e["split"] == "holdout" and e["mean"] is not None):
            spent.holdout.append((spent.at_evaluation.get(e["id"], 0), e["mean"]))
            prog = programs.get(e["program_id"])
            if prog is not None:
                hold_iter.append((prog["iteration"], e["mean"]))
    curve.holdout_by_steps = _running_best(spent.holdout)
    curve.holdout_by_iteration = _running_best(hold_iter)
    _add_checkpoints(curve, checkpoints)
    return curve


def _add_checkpoints(curve: Curve, checkpoints: list[dict]) -> None:
    """Checkpoint-style events (a baseline learner's periodic evaluations) join the curve."""
    for ev in checkpoints:
        d = ev["data"]
        x = _num(d.get("env_steps"))
        if x is None:  # checkpoints are selected for a numeric env_steps
            continue
        curve.total_steps = max(curve.total_steps, int(x))
        it = _num(d.get("iteration"))
        curve.last_iteration = max(curve.last_iteration, int(it or 0))
        for key, by_steps, by_iter in (
            ("dev", "dev_by_steps", "dev_by_iteration"),
            ("holdout", "holdout_by_steps", "holdout_by_iteration"),
        ):
            y = _num(d.get(key))
            if y is None:
                continue
            getattr(curve, by_steps).append((x, y))
            if it is not None:
                getattr(curve, by_iter).append((it, y))
    for name in ("dev_by_steps", "holdout_by_steps", "dev_by_iteration", "holdout_by_iteration"):
        setattr(curve, name, _running_best(getattr(curve, name)))
