"""Printing a verify report."""

from __future__ import annotations

import json
import math
from typing import Any

from scriptrl.glassbox.verify.results import VerifyReport


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, fmt)


def _verdict(p: bool | None, finished: bool = True, warning: bool = False) -> Any:
    from rich.text import Text

    if not finished:
        return Text("NOT DONE", style="yellow")
    if warning:
        return Text("WARN", style="yellow")
    return (
        Text("n/a", style="dim")
        if p is None
        else Text("PASS", style="green")
        if p
        else Text("FAIL", style="bold red")
    )


def print_verify_report(report: VerifyReport, console=None) -> None:
    """The pass/fail tables, then every failure with its counterexample on one line each."""
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 140))
    _print_properties(report, console)
    if report.robustness:
        _print_robustness(report, console)
    if report.levels:
        console.print(Text(report.levels, style="dim"))
    console.print(
        Text(f"{report.seconds:.0f} s of a {report.max_seconds:g} s limit (--max-seconds)", style="dim")
    )
    _print_verdict(report, console)


def _print_properties(report: VerifyReport, console: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Properties of {report.program} on {report.env_label}", title_justify="left")
    table.add_column("property")
    table.add_column("result")
    table.add_column("detail")
    for c in report.checks:
        table.add_row(c.name, _verdict(c.passed, c.finished), Text(c.detail))
    console.print(table)
    rollout = [b for b in report.bounds if b["from"] == "rollouts"]
    if rollout:
        console.print(
            Text(
                "unbounded components drawn from the range seen in rollouts: "
                + ", ".join(f"obs[{b['component']}] in [{b['low']:.3g}, {b['high']:.3g}]" for b in rollout),
                style="dim",
            )
        )


def _print_robustness(report: VerifyReport, console: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title="Robustness (retention = share of the clean margin over a random policy)",
        title_justify="left",
    )
    for col, justify in (
        ("condition", "left"),
        ("mean", "right"),
        ("95% CI", "right"),
        ("random", "right"),
        ("retention", "right"),
        ("result", "left"),
        ("detail", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in report.robustness:
        ci = "-" if r.ci95 is None else f"{_num(r.ci95[0])}..{_num(r.ci95[1])}"
        table.add_row(
            r.condition,
            _num(r.mean),
            ci,
            _num(r.random),
            _num(r.retention, ".0%"),
            _verdict(r.passed, r.finished, r.warning)
            if r.condition != "clean" or r.passed is False or not r.finished
            else Text("ref", style="dim"),
            Text(r.detail),
        )
    console.print(table)


def _print_verdict(report: VerifyReport, console: Any) -> None:
    """The one-line verdict; on failure, each failed property's counterexample."""
    from rich.text import Text

    warnings = sum(r.warning for r in report.robustness)
    note = f" ({warnings} robustness warning{'s' * (warnings != 1)})" if warnings else ""
    if report.passed and report.complete:
        console.print(Text("verify: PASS" + note, style="bold green"))
        return
    if report.passed:
        console.print(
            Text(
                "verify: INCOMPLETE (nothing failed; not finished: "
                + "; ".join(report.unfinished())
                + ")"
                + note,
                style="bold yellow",
            )
        )
        return
    console.print(Text("verify: FAIL", style="bold red"))
    for c in report.checks:
        if c.passed is False:
            console.print(Text(f"counterexample ({c.name}): {json.dumps(c.counterexample, default=str)}"))
