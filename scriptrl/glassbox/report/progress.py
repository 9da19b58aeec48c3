"""The live terminal view of a training run (quiet when stdout is not a terminal)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


class LiveProgress:
    """Callable the search gives a snapshot to after every iteration."""

    def __init__(self, env_label: str, target: float | None) -> None:
        self.env_label, self.target = env_label, target
        self.console = Console(stderr=False)
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)
        self.last_evals, self.last_seconds = 0, 0.0

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.live.__exit__(exc_type, exc, tb)

    def __call__(self, snap: dict) -> None:
        dt = max(1e-9, snap["seconds"] - self.last_seconds)
        rate = (snap["evaluations"] - self.last_evals) / dt if snap["seconds"] > self.last_seconds else 0.0
        self.last_evals, self.last_seconds = snap["evaluations"], snap["seconds"]
        t = Table(
            title=f"scriptrl train {self.env_label}"
            + (f" · target {self.target:g}" if self.target is not None else "")
        )
        t.add_column("iteration", justify="right")
        t.add_column("best training", justify="right")
        t.add_column("best holdout", justify="right")
        t.add_column("env steps", justify="right")
        t.add_column("evals/s", justify="right")
        t.add_column("temperature", justify="right")
        t.add_column("elapsed", justify="right")
        t.add_column("cost", justify="right")
        t.add_row(
            str(snap["iteration"]),
            _fmt(snap["best_dev"]),
            _fmt(snap["best_holdout"]),
            f"{snap['env_steps']:,}",
            f"{rate:.1f}",
            f"{snap['temperature']:.2f}",
            f"{snap['seconds']:.0f}s",
            f"${snap['cost_usd']:.4f}",
        )
        wins = (
            ", ".join(f"{k} {v}" for k, v in sorted(snap["improvements"].items(), key=lambda kv: -kv[1]))
            or "none yet"
        )
        grid = Table.grid()
        grid.add_row(t)
        grid.add_row(f"improvements by generator: {wins}")
        model = model_line(snap)
        if model:
            grid.add_row(model)
        self.live.update(grid)


def model_line(snap: dict) -> str:
    """A slow model's speed, calls in flight, its share of the round and what the evaluators do
    meanwhile; empty for a run without one."""
    if "calls_in_flight" not in snap:
        return ""
    per_call = snap.get("seconds_per_call")
    parts = [
        f"model: {'-' if per_call is None else f'{per_call:.1f}'} s per call",
        f"{snap['calls_in_flight']} in flight",
    ]
    if snap.get("model_programs") is not None:
        parts.append(
            f"this round {snap['model_programs']} by the model, {snap['fast_programs']} offline"
            f" ({max(0.0, snap['round_seconds']):.0f} s of model time)"
        )
    if snap.get("model_joined") is not None:
        parts.append(f"its programs: {snap['model_raced']} raced, {snap['model_joined']} joined")
    parts.append(f"evaluators: {snap.get('activity') or '-'}")
    if snap.get("predicted_model_seconds") is not None:
        parts.append(f"model writing left: about {snap['predicted_model_seconds']:.0f} s")
    return " · ".join(parts)
