"""Terminal views of run folders: `scriptrl runs` (all runs under a folder) and `scriptrl show` (one run).

Both read the run database only, so they work on a run that is still going (WAL lets a
reader see the last committed step without blocking the writer) and on one that was killed.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from scriptrl.store import BEST_POLICY_NAME, RunStore, config_value, list_runs, run_status, to_plain


def _console() -> Console:
    """Like report.terminal.make_console, without importing the evaluator (and gymnasium) for a listing."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(to_plain(obj), allow_nan=False) + "\n")


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _mean_ci(row: dict | None) -> str:
    if not row or row.get("mean") is None:
        return "-"
    lo, hi = row.get("ci_lo"), row.get("ci_hi")
    if lo is None or hi is None:
        return _num(row["mean"])
    return f"{row['mean']:.2f} ± {(hi - lo) / 2:.2f}"


def _cost(x: float | None) -> str:
    return "-" if x is None else f"${x:.4f}" if x < 1 else f"${x:.2f}"


def print_runs(root: Path, json_output: bool = False, console: Console | None = None) -> None:
    """List every run under ``root`` so a person can pick one to show, resume or compare."""
    runs = list_runs(root)
    if json_output:
        _print_json(runs)
        return
    console = console or _console()
    if not runs:
        console.print(
            f"no runs under {root} (start one with `scriptrl train --run-dir DIR`)", highlight=False
        )
        return
    table = Table(title=f"Runs under {root}")
    for col, justify in (
        ("run", "left"),
        ("env", "left"),
        ("generator", "left"),
        ("created", "left"),
        ("status", "left"),
        ("best dev", "right"),
        ("best holdout", "right"),
        ("env steps", "right"),
        ("programs", "right"),
        ("cost", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in runs:
        table.add_row(
            Text(r["run_dir"]),
            str(r["env"] or "-"),
            str(r["generator"] or "-"),
            str(r["created"] or "-"),
            Text(str(r["status"])),
            _num(r["best_dev"]),
            _num(r["best_holdout"]),
            "-" if r["env_steps"] is None else f"{r['env_steps']:,}",
            "-" if r["programs"] is None else str(r["programs"]),
            _cost(r["cost"]),
        )
    console.print(table)


def _open(run_dir: Path) -> RunStore:
    return RunStore.open(run_dir)  # raises UserError naming the fix for a missing or damaged folder


def show_data(run_dir: Path, n: int = 10) -> dict:
    """Everything `show` prints, as plain data (the --json form, and what the table is built from)."""
    with _open(run_dir) as store:
        config = store.config
        top = store.top_programs(store.selection_split(), n)
        for row in top:
            hold = store.best_evaluation(row["id"], "holdout")
            row["holdout_mean"] = hold["mean"] if hold else None
            row["holdout_ci_lo"] = hold["ci_lo"] if hold else None
            row["holdout_ci_hi"] = hold["ci_hi"] if hold else None
            row["holdout_episodes"] = hold["episodes"] if hold else None
        best_file = store.run_dir / BEST_POLICY_NAME
        if best_file.is_file():
            best = {
                "path": str(best_file),
                "program_id": None,
                "source": best_file.read_text(encoding="utf-8"),
            }
        elif top:
            best = {"path": None, "program_id": top[0]["id"], "source": top[0]["source"]}
        else:
            best = None
        return {
            "run_dir": str(store.run_dir),
            "created": store.meta().get("created"),
            "status": run_status(store),
            "env": config_value(config, "env", "env_id"),
            "generator": config_value(config, "generator", "generators"),
            "seed": config.get("seed"),
            "config": config,
            "totals": store.totals(),
            "top": top,
            "best_policy": best,
        }


def print_show(run_dir: Path, n: int = 10, json_output: bool = False, console: Console | None = None) -> None:
    """One run at a glance: what it ran on, what it spent, what it found, and the policy itself."""
    data = show_data(run_dir, n)
    if json_output:
        _print_json(data)
        return
    console = console or _console()
    t = data["totals"]
    summary = Table(title=f"Run {data['run_dir']}", show_header=False)
    summary.add_column("field")
    summary.add_column("value")
    for k, v in (
        ("env", data["env"] or "-"),
        ("generator", data["generator"] or "-"),
        ("seed", "-" if data["seed"] is None else data["seed"]),
        ("created", data["created"] or "-"),
        ("status", data["status"]),
        ("env steps", f"{t['env_steps']:,}"),
        ("evaluations", f"{t['evaluations']:,} ({t['eval_seconds']:.1f} s)"),
        ("programs", f"{t['programs']:,}"),
        ("generator calls", f"{t['calls']:,}"),
        ("tokens", f"{t['prompt_tokens']:,} prompt + {t['completion_tokens']:,} completion"),
        ("cost", _cost(t["cost_usd"])),
    ):
        summary.add_row(k, Text(str(v)))
    console.print(summary)

    if data["top"]:
        table = Table(title=f"Top {len(data['top'])} programs on dev")
        for col, justify in (
            ("id", "right"),
            ("generator", "left"),
            ("change", "left"),
            ("temp", "right"),
            ("dev mean ± CI", "right"),
            ("episodes", "right"),
            ("holdout", "right"),
            ("status", "left"),
        ):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for row in data["top"]:
            hold = {"mean": row["holdout_mean"], "ci_lo": row["holdout_ci_lo"], "ci_hi": row["holdout_ci_hi"]}
            table.add_row(
                str(row["id"]),
                Text(row["generator"]),
                Text(row["change"][:60]),
                _num(row["temperature"], ".2g"),
                _mean_ci(row),
                str(row["episodes"]),
                _mean_ci(hold),
                Text(row["status"]),
            )
        console.print(table)
    else:
        console.print("no program has a dev evaluation yet", highlight=False)

    best = data["best_policy"]
    if best is not None:
        title = best["path"] or f"top program {best['program_id']} (no {BEST_POLICY_NAME} written yet)"
        console.print(Text(title, style="bold"))
        console.print(Syntax(best["source"], "python", line_numbers=False, word_wrap=True))
