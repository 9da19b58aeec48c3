"""Side-by-side comparison of runs: scriptrl searches and neural baselines alike.

Every figure is read back from the run folders, never from a process's memory, so a
comparison can be redone, checked and extended later. The two kinds of run record their
learning differently and this module is where that difference is bridged, explicitly:

* a search's learning *is* its evaluation: env steps are its cheap and full dev episodes
  plus constant tuning (as ``TrainResult.env_steps`` counts them), its time is the wall time
  of the run with any gap before a ``resume`` left out;
* a baseline's learning is its training interaction (the "train" rows); the curve, holdout
  and audit episodes that measure it are left out of its env steps and seconds, which
  favours the baseline.

"To threshold" is the first champion (a promotion, confirmed on the holdout split) whose
holdout mean reaches the threshold, the environment's solved threshold unless given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scriptrl.errors import UserError
from scriptrl.store import RunStore, config_value, run_status, to_plain
from scriptrl.success_rate import SuccessRate, format_percent

SEARCH_STAGES = ("cheap", "full")


def _active_clock(store: RunStore):
    """Seconds of activity since the run started at any timestamp, leaving out resume gaps."""
    stamps = sorted(
        [(e["created"], e["kind"]) for e in store.events()]
        + [(e["created"], "eval") for e in store.evaluations()]
    )
    if not stamps:
        return lambda t: 0.0
    start = next((t for t, k in stamps if k == "start"), stamps[0][0])
    gaps: list[tuple[float, float]] = []  # (resume time, idle seconds before it)
    prev = start
    for t, kind in stamps:
        if kind == "resume" and t > start:
            gaps.append((t, max(0.0, t - prev)))
        prev = t

    def clock(t: float) -> float:
        return max(0.0, t - start - sum(g for at, g in gaps if at <= t))

    return clock


def is_baseline(config: dict) -> bool:
    return config.get("kind") == "baseline"


def method_label(config: dict) -> str:
    if is_baseline(config):
        return str(config.get("algo", config.get("generator", "?"))).upper()
    gen = config_value(config, "generator", "generators") or "?"
    model = config.get("model")
    return f"scriptrl {gen}" + (f" ({model})" if model and gen != "offline" else "")


def run_curve(store: RunStore) -> dict[str, list]:
    """Score against learning env steps and seconds: ``points`` (env_steps, seconds, dev score)
    and ``promotions`` (env_steps, seconds, holdout mean, ci half-width)."""
    config = store.config
    points: list[tuple[int, float, float]] = []
    promotions: list[tuple[int, float, float, float | None]] = []
    if is_baseline(config):
        for e in store.events("curve"):
            d = e["data"]
            if d.get("dev") is not None:
                points.append((int(d["env_steps"]), float(d["seconds"]), float(d["dev"])))
        for e in store.events("promotion"):
            d = e["data"]
            promotions.append(
                (int(d.get("env_steps", 0)), float(d.get("seconds", 0.0)), float(d["holdout"]), _half(d))
            )
        return {"points": points, "promotions": promotions}
    clock = _active_clock(store)
    timeline: list[tuple[float, int, str, Any]] = []
    for ev in store.evaluations():
        if ev["stage"] in SEARCH_STAGES:
            timeline.append((ev["created"], ev["env_steps"] or 0, ev["stage"], ev["mean"]))
    for e in store.events():
        if e["kind"] == "tune":
            timeline.append((e["created"], int(e["data"].get("env_steps", 0)), "tune", None))
        elif e["kind"] == "promotion":
            timeline.append((e["created"], 0, "promotion", e["data"]))
    timeline.sort(key=lambda x: x[0])
    steps, best = 0, -math.inf
    for t, n, kind, value in timeline:
        steps += n
        if kind == "full" and value is not None and value > best:
            best = value
            points.append((steps, clock(t), best))
        elif kind == "promotion":
            d = value
            promotions.append(
                (
                    int(d.get("env_steps", steps)),
                    float(d.get("seconds", clock(t))),
                    float(d["holdout"]),
                    _half(d),
                )
            )
    return {"points": points, "promotions": promotions}


def _half(d: dict) -> float | None:
    ci = d.get("ci95")
    if isinstance(ci, list | tuple) and len(ci) == 2 and None not in ci:
        return (ci[1] - ci[0]) / 2
    return None


def _threshold(env: str | None, threshold: float | None) -> float | None:
    if threshold is not None or env is None:
        return threshold
    try:
        from scriptrl.envs import resolve_env

        return resolve_env(env).solved_threshold
    except Exception:  # an env that no longer resolves still has its run compared, without a threshold
        return None


def run_row(run_dir: str | Path, threshold: float | None = None) -> dict[str, Any]:
    """One line of the comparison, plus its curve for plotting."""
    with RunStore.open(run_dir) as store:
        config = store.config
        env = config_value(config, "env", "env_id")
        thr = _threshold(env, threshold)
        curve = run_curve(store)
        promotions = store.events("promotion")
        champ = promotions[-1]["data"] if promotions else None
        audit = None
        success = None
        if champ is not None:
            rows = store.evaluations(program_id=int(champ["id"]), split="audit")
            audit = rows[-1]["mean"] if rows else None
            held = store.evaluations(program_id=int(champ["id"]), split="holdout")
            success = SuccessRate.of_digest(held[-1]["digest"]) if held else None
        totals = store.totals()
        if is_baseline(config):
            stops = store.events("stop")
            env_steps = sum(e["env_steps"] or 0 for e in store.evaluations(split="train"))
            seconds = (
                stops[-1]["data"].get("seconds")
                if stops
                else (curve["points"][-1][1] if curve["points"] else 0.0)
            )
        else:
            env_steps = sum(e["env_steps"] or 0 for e in store.evaluations() if e["stage"] in SEARCH_STAGES)
            env_steps += sum(int(e["data"].get("env_steps", 0)) for e in store.events("tune"))
            state = store.load_state() or {}
            seconds = state.get("seconds")
            if seconds is None:
                stamps = [e["created"] for e in store.events()] + [e["created"] for e in store.evaluations()]
                seconds = _active_clock(store)(max(stamps)) if stamps else 0.0
        reached = None
        if thr is not None:
            reached = next(((s, t) for s, t, h, _ in curve["promotions"] if h >= thr), None)
        return {
            "run_dir": str(store.run_dir),
            "env": env,
            "method": method_label(config),
            "kind": "baseline" if is_baseline(config) else "scriptrl",
            "status": run_status(store),
            "holdout": champ["holdout"] if champ else None,
            "holdout_ci": _half(champ) if champ else None,
            # the champion's holdout success rate and Wilson interval (None: success not defined)
            "success": success.rate if success else None,
            "success_ci": list(success.ci95) if success else None,
            "audit": audit,
            "threshold": thr,
            "steps_to_threshold": reached[0] if reached else None,
            "seconds_to_threshold": reached[1] if reached else None,
            "env_steps": int(env_steps),
            "seconds": float(seconds or 0.0),
            "tokens": int(totals["prompt_tokens"]) + int(totals["completion_tokens"]),
            "cost_usd": float(totals["cost_usd"]),
            "curve": curve,
        }


def compare(run_dirs: Sequence[str | Path], threshold: float | None = None) -> list[dict[str, Any]]:
    """Rows for ``run_dirs``, grouped by environment in the order first seen."""
    if not run_dirs:
        raise UserError("give at least one run folder to compare (`scriptrl runs` lists them)")
    rows = [run_row(d, threshold) for d in run_dirs]
    order: dict[str, int] = {}
    for r in rows:
        order.setdefault(str(r["env"]), len(order))
    return sorted(rows, key=lambda r: order[str(r["env"])])


# --------------------------------------------------------------------------- output


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _score(r: dict) -> str:
    if r["holdout"] is None:
        return "-"
    return f"{r['holdout']:.2f}" + (f" ± {r['holdout_ci']:.2f}" if r["holdout_ci"] is not None else "")


def _steps(n: int | None) -> str:
    return "not reached" if n is None else f"{n:,}"


def table_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and cells, shared by the terminal table and the Markdown one (benchmarks)."""
    header = [
        "env",
        "method",
        "holdout ± 95% CI",
        "audit",
        "threshold",
        "env steps to threshold",
        "seconds to threshold",
        "env steps (total)",
        "seconds (total)",
        "tokens",
        "cost",
    ]
    with_success = any(r.get("success") is not None for r in rows)
    if with_success:  # only where some environment defines success: other tables stay as they were
        header.insert(3, "success (holdout)")
    cells = []
    for r in rows:
        thr = r["threshold"]
        success = "-" if r.get("success") is None else format_percent(r["success"], r.get("success_ci"))
        cells.append(
            [
                str(r["env"]),
                r["method"],
                _score(r),
                *([success] if with_success else []),
                _fmt(r["audit"]),
                "-" if thr is None else f"{thr:g}",
                _steps(r["steps_to_threshold"]) if thr is not None else "-",
                _fmt(r["seconds_to_threshold"], ".1f") if r["steps_to_threshold"] is not None else "-",
                f"{r['env_steps']:,}",
                f"{r['seconds']:.1f}",
                f"{r['tokens']:,}",
                f"${r['cost_usd']:.4f}",
            ]
        )
    return header, cells


def markdown_table(rows: list[dict]) -> str:
    header, cells = table_rows(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines)


def print_compare(rows: list[dict], json_output: bool = False) -> None:
    import json
    import sys

    if json_output:
        sys.stdout.write(json.dumps(to_plain(rows), allow_nan=False) + "\n")
        return
    from rich.table import Table
    from rich.text import Text

    from scriptrl.glassbox.report.runs_view import _console

    header, cells = table_rows(rows)
    table = Table(title="Runs compared (holdout seeds 1000-1049, audit 2000-2049)")
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i < 2 else "right")
    table.add_column("run")
    for r, row in zip(rows, cells, strict=True):
        table.add_row(*[Text(c) for c in row], Text(Path(r["run_dir"]).name))
    console = _console()
    console.print(table)
    console.print(
        "env steps and seconds: a search counts all its dev evaluations and tuning; a baseline its "
        "training steps and time only (its measuring left out)",
        highlight=False,
    )


def plot(rows: list[dict], path: str | Path) -> Path:
    """Score against env steps (left) and seconds (right), one row of panels per environment.

    Lines are the dev score of the learner as it went (a search: its best full dev score so
    far; a baseline: each checkpoint's), dots the champions confirmed on holdout.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError(
            "plotting needs matplotlib: pip install matplotlib (or the scriptrl[baselines] extra)"
        ) from None
    envs: list[str] = []
    for r in rows:
        if str(r["env"]) not in envs:
            envs.append(str(r["env"]))
    fig, axes = plt.subplots(len(envs), 2, figsize=(12, 3.6 * len(envs)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, env in enumerate(envs):
        env_rows = [r for r in rows if str(r["env"]) == env]
        for col, (idx, label) in enumerate(((0, "env steps"), (1, "seconds"))):
            ax = axes[i][col]
            for k, r in enumerate(env_rows):
                c = colors[k % len(colors)]
                pts = r["curve"]["points"]
                name = f"{r['method']} ({Path(r['run_dir']).name})"
                if pts:
                    xs = [max(p[idx], 1) for p in pts]
                    ax.plot(
                        xs,
                        [p[2] for p in pts],
                        color=c,
                        label=name,
                        marker=".",
                        markersize=3,
                        drawstyle="steps-post" if r["kind"] == "scriptrl" else "default",
                    )
                proms = r["curve"]["promotions"]
                if proms:
                    ax.scatter(
                        [max(p[idx], 1) for p in proms],
                        [p[2] for p in proms],
                        color=c,
                        marker="o",
                        s=18,
                        zorder=3,
                    )
            thr = env_rows[0]["threshold"]
            if thr is not None:
                ax.axhline(thr, color="grey", linestyle="--", linewidth=1, label=f"threshold {thr:g}")
            ax.set_xscale("log")
            ax.set_xlabel(label + " (log)")
            ax.set_ylabel("score (line: dev, dots: holdout)")
            ax.set_title(env)
            ax.grid(True, alpha=0.3)
            if col == 0:
                ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    try:
        fig.savefig(path, dpi=110)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e}") from None
    finally:
        plt.close(fig)
    return path
