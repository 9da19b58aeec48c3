"""Readable terminal output for evaluation results."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from scriptrl.evaluate import EvalResult


def make_console() -> Console:
    """A console that does not crop ids when output goes to a pipe or file (rich assumes 80 columns)."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def print_eval_result(result: EvalResult, console: Console | None = None) -> None:
    console = console or make_console()
    lo, hi = result.ci95
    table = Table(title=f"{result.env_label} · split {result.split} · gymnasium {result.gymnasium_version}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("episodes", str(len(result.returns))),
        ("mean return", f"{result.mean:.2f}"),
        ("95% CI", f"[{lo:.2f}, {hi:.2f}]"),
        ("std", f"{result.std:.2f}"),
        ("median", f"{result.median:.2f}"),
        ("min / max", f"{result.min:.2f} / {result.max:.2f}"),
        ("episode ends", ", ".join(f"{k} {v}" for k, v in sorted(result.termination_counts.items()))),
        ("failures", str(len(result.failures))),
        ("env steps", f"{result.env_steps:,}"),
        ("wall seconds", f"{result.seconds:.2f}"),
        ("steps/s", f"{result.steps_per_second:,.0f}"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if result.failures:
        reasons: dict[str, list[int]] = {}
        for f in result.failures:
            reasons.setdefault(str(f["reason"]), []).append(f["seed"])
        for reason, seeds in reasons.items():
            console.print(f"[red]failed[/red] on {len(seeds)} episode(s) (seeds {seeds[:5]}{'…' if len(seeds) > 5 else ''}): {reason}", markup=True, highlight=False)
    weak = [k for k, v in result.isolation.items() if not v.startswith("on")]
    iso = "all layers on" if result.isolation and not weak else ("off: " + ", ".join(weak) if weak else "n/a")
    console.print(f"isolation: {iso}", highlight=False)
