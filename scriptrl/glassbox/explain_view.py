"""The console view of ``scriptrl explain``: how often each line ran, which line chose each action,
and (``crash_view``) each failed episode's last decisions."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scriptrl.glassbox.trace import Explanation


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if math.isfinite(x) else "-"


def print_explanation(ex: Explanation, console=None, crashes_shown: int | None = None) -> None:
    """Two tables: how often each line ran, and which line (under which conditions) chose each action;
    then, per failed episode (the worst ``crashes_shown``), its last decisions."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from scriptrl.glassbox.crash_view import DEFAULT_SHOWN, print_crashes

    console = console or Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 140))
    rets = [e["return"] for e in ex.episodes]
    mean = sum(rets) / len(rets) if rets else float("nan")
    fails = [e for e in ex.episodes if e["end"] == "failure"]
    console.print(
        Text(
            f"{ex.program} on {ex.env_label} (gymnasium {ex.gymnasium_version}): "
            f"{len(ex.episodes)} episodes, seeds {ex.seeds[0]}-{ex.seeds[-1]}, "
            f"{ex.decisions:,} decisions, mean return {mean:.2f}"
        )
    )
    for e in fails[:3]:
        console.print(
            Text(f"episode seed {e['seed']} failed at step {e['length']}: {e['reason']}", style="red")
        )

    table = Table(title="How often each line ran", title_justify="left")
    table.add_column("line", justify="right")
    table.add_column("ran", justify="right")
    table.add_column("in % of decisions", justify="right")
    table.add_column("code")
    for n, text in enumerate(ex.source, start=1):
        if not text.strip() or text.strip().startswith("#"):
            continue
        runs = ex.line_runs.get(n, 0)
        share = ex.line_decisions.get(n, 0) / ex.decisions if ex.decisions else 0.0
        table.add_row(
            str(n),
            f"{runs:,}" if runs else "-",
            _pct(share) if runs else "-",
            Text(text.rstrip(), style="" if runs else "dim"),
        )
    console.print(table)

    console.print(_rules_table(ex))
    print_crashes(ex.crashes, console, DEFAULT_SHOWN if crashes_shown is None else crashes_shown)
    console.print(
        Text(
            "policy ran "
            + (
                "in this process (--unsafe-in-process)"
                if ex.isolation.get("process", "").startswith("off")
                else "in the sandbox: " + ", ".join(k for k, v in ex.isolation.items() if v.startswith("on"))
            ),
            style="dim",
        )
    )


def _rules_table(ex: Explanation):
    """Which line (under which conditions) chose each action."""
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title="Which line chose each action (conditions that held every time)", title_justify="left"
    )
    for col, justify in (
        ("action", "left"),
        ("decisions", "right"),
        ("share", "right"),
        ("line", "right"),
        ("code", "left"),
        ("when", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in ex.rules:
        action = (
            r.action_name
            if r.action is None
            else f"{r.action} ({r.action_name})"
            if r.action_name != str(r.action)
            else str(r.action)
        )
        if r.action_stats:
            action += f" mean {r.action_stats['mean']}"
        when = "; ".join(f"line {c['line']}: {c['expr']} is {c['value']}" for c in r.conditions) or "-"
        if r.paths > 1:
            when += f" ({r.paths} distinct paths)"
        table.add_row(action, f"{r.count:,}", _pct(r.share), str(r.line or "-"), Text(r.code), Text(when))
    return table
