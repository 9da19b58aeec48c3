"""``scriptrl report``: one self-contained HTML page that explains a finished (or running) run.

Self-contained means one file that opens anywhere, offline, years later: plots are inline
SVG drawn by matplotlib, code is highlighted by pygments into inline CSS, there are no
external scripts, fonts or images, and a Content-Security-Policy forbids the page from
loading anything at all. A small inline script only records script errors and whether
each plot laid out, into attributes on ``<body>``, so a headless browser can check the
page the way a person sees it.

Learning curves count *search* env steps (cheap and full dev evaluations and constant
tuning), the budget ``--max-env-steps`` limits; holdout and audit confirmations are
counted apart, as benchmarks count a baseline's evaluation episodes apart.

A baseline run (``--baseline RUN_DIR``) uses the same store format and may hold only
evaluations or only events: its curve comes from dev/holdout evaluations (as for a
scriptrl run) and from any event whose data has a numeric ``env_steps`` and a ``dev``
and/or ``holdout`` score (optionally ``iteration``), e.g. ``kind="checkpoint"``, which is
how a gradient-based learner records its periodic evaluations.
"""

from __future__ import annotations

import difflib
import json
import platform
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from scriptrl import seeds
from scriptrl.errors import UserError
from scriptrl.glassbox.crashes import DEFAULT_LAST
from scriptrl.glassbox.export import champion_id, lineage_ids
from scriptrl.glassbox.report.crashes import crash_section
from scriptrl.glassbox.report.curves import SEARCH_STAGES, Curve, _num, learning_curve
from scriptrl.glassbox.report.plots import svg_plot
from scriptrl.glassbox.report.shield import shield_rows
from scriptrl.store import RunStore, config_value, run_status, write_output
from scriptrl.success_rate import SuccessRate

__all__ = ["SEARCH_STAGES", "Curve", "build_report", "learning_curve", "write_report"]

_MAX_DIFF_LINES = 120
_MAX_DIFFS = 40  # most recent parent -> child edges shown; a baseline can have hundreds of checkpoints
_MAX_DIFF_SOURCE = 60_000  # characters; beyond this a program is an exported network, not something to diff
_MAX_SHOWN_SOURCE = 200_000


# --------------------------------------------------------------------------- report data


def _fmt(x: Any, spec: str = ".2f") -> str:
    v = _num(x)
    return "-" if v is None else format(v, spec)


def _ci(row: dict | None) -> str:
    if not row or row.get("mean") is None:
        return "-"
    if row.get("ci_lo") is None or row.get("ci_hi") is None:
        return _fmt(row["mean"])
    return f"{row['mean']:.2f} [{row['ci_lo']:.2f}, {row['ci_hi']:.2f}]"


def _success(row: dict | None) -> str | None:
    """``96 % [91, 98] (48/50)`` from a stored evaluation's episodes; None where success is undefined."""
    rate = SuccessRate.of_digest((row or {}).get("digest"))
    return rate.percent() if rate else None


def _with_success(row: dict | None) -> str:
    """The mean [CI] and, where success is defined, the success rate beside it."""
    success = _success(row)
    return _ci(row) + (f" · success {success}" if success else "")


def _success_rule(cfg: dict) -> str | None:
    """What success meant in this run: the user's --success, else the description's line."""
    if cfg.get("success"):
        return str(cfg["success"])
    from scriptrl.envs.description import curated

    desc = curated().get(str(config_value(cfg, "env", "env_id")))
    return desc.success_text if desc is not None else None


def _versions() -> list[tuple[str, str]]:
    from scriptrl import __version__

    out = [("scriptrl", __version__), ("python", platform.python_version())]
    for dist in ("gymnasium", "numpy", "jinja2", "pygments", "matplotlib", "hypothesis"):
        try:
            out.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            out.append((dist, "not installed"))
    out.append(("platform", f"{platform.system()} {platform.machine()}"))
    return out


def _score_row(store: RunStore, pid: int) -> tuple[str, float | None]:
    best = store.selection_score(pid)
    if best is None or best["mean"] is None:
        return "-", None
    return f"{best['mean']:.2f} ({best['stage']}, {best['episodes']} ep.)", best["mean"]


def _highlight(source: str, lexer_name: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    return highlight(
        source,
        get_lexer_by_name(lexer_name),
        HtmlFormatter(cssclass="hl", linenos="table" if lexer_name == "python" else False),
    )


def _pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(cssclass="hl", style="friendly").get_style_defs(".hl")


def _lineage(store: RunStore, champ: int | None) -> tuple[list[dict], list[dict]]:
    if champ is None:
        return [], []
    ids = lineage_ids(store, champ)
    rows, diffs = [], []
    scores: dict[int, float | None] = {}
    for pid in ids:
        try:
            p = store.program(pid)
        except KeyError:
            continue
        text, score = _score_row(store, pid)
        scores[pid] = score
        hold = store.best_evaluation(pid, "holdout")
        rows.append(
            {
                "id": pid,
                "iteration": p["iteration"],
                "generator": p["generator"],
                "change": p["change"],
                "temperature": _fmt(p["temperature"], ".3g"),
                "note": p["note"] or "",
                "dev": text,
                "holdout": _with_success(hold) if hold else "-",
                "parents": ", ".join(f"#{x}" for x in p["parents"]) or "-",
                "champion": pid == champ,
            }
        )
        for parent in p["parents"]:
            try:
                before = store.program(parent)["source"]
            except KeyError:
                continue
            ps, cs = scores.get(parent), score
            delta = "" if ps is None or cs is None else f"{cs - ps:+.2f}"
            edge = {
                "parent": parent,
                "child": pid,
                "parent_score": _fmt(ps),
                "child_score": _fmt(cs),
                "delta": delta,
                "generator": p["generator"],
                "change": p["change"],
                "note": p["note"] or "",
            }
            if max(len(before), len(p["source"])) > _MAX_DIFF_SOURCE:
                diffs.append({**edge, "html": None, "too_large": True})
                continue
            lines = list(
                difflib.unified_diff(
                    before.splitlines(), p["source"].splitlines(), f"#{parent}", f"#{pid}", lineterm="", n=2
                )
            )
            cut = len(lines) > _MAX_DIFF_LINES
            body = "\n".join(lines[:_MAX_DIFF_LINES]) + (
                f"\n... ({len(lines) - _MAX_DIFF_LINES} more lines)" if cut else ""
            )
            diffs.append(
                {**edge, "html": _highlight(body or "(no textual change)", "diff"), "too_large": False}
            )
    return rows, diffs[-_MAX_DIFFS:]


def _costs(store: RunStore) -> dict:
    groups: dict[tuple[str, str], dict] = {}
    for c in store.calls():
        key = (c["generator"], c["model"] or "-")
        g = groups.setdefault(
            key,
            {
                "generator": key[0],
                "model": key[1],
                "calls": 0,
                "failed": 0,
                "prompt": 0,
                "completion": 0,
                "cost": 0.0,
                "latency": 0.0,
            },
        )
        g["calls"] += 1
        g["failed"] += 0 if c["ok"] else 1
        g["prompt"] += c["prompt_tokens"]
        g["completion"] += c["completion_tokens"]
        g["cost"] += c["cost_usd"]
        g["latency"] += c["latency_s"]
    rows = sorted(groups.values(), key=lambda g: (-g["cost"], -g["calls"], g["generator"]))
    total = {
        k: sum(g[k] for g in rows) for k in ("calls", "failed", "prompt", "completion", "cost", "latency")
    }
    evals = store.evaluations()
    events = store.events()
    state = store.load_state() or {}
    span = (events[-1]["created"] - events[0]["created"]) if len(events) > 1 else None
    search_steps = sum(e["env_steps"] for e in evals if e["stage"] in SEARCH_STAGES) + sum(
        int(_num((ev["data"] or {}).get("env_steps")) or 0) for ev in events if ev["kind"] == "tune"
    )
    wall = [
        ("search wall time (seconds the search ran, over resumes)", _fmt(state.get("seconds"), ",.1f")),
        ("first to last event", _fmt(span, ",.1f")),
        ("evaluation time (sum over evaluations)", _fmt(sum(e["seconds"] for e in evals), ",.1f")),
        ("generator latency (sum over calls)", _fmt(total["latency"], ",.1f")),
        (
            "env steps: search (cheap + full dev, tuning)",
            f"{search_steps:,}",
        ),
        (
            "env steps: holdout and audit confirmations",
            f"{sum(e['env_steps'] for e in evals if e['stage'] in ('holdout', 'audit')):,}",
        ),
    ]
    return {"rows": rows, "total": total, "wall": wall}


def _protocol(store: RunStore, champ: int | None) -> dict:
    cfg = store.config
    evals = store.evaluations()

    def rng(name: str, default: tuple[int, int]) -> str:
        lo, hi = cfg.get(name) or default
        return f"{lo}–{hi - 1} ({hi - lo} seeds)"

    envs = sorted({(e["env_id"] or "-", e["gymnasium_version"] or "-") for e in evals})
    notices = sorted({e["notice"] for e in evals if e.get("notice")})
    isolation: dict = {}
    if champ is not None:
        row = store.best_evaluation(champ, "holdout") or store.selection_score(champ)
        isolation = (row or {}).get("isolation") or {}
    return {
        "splits": [
            (
                "training stream",
                f"{seeds.TRAIN_START}-",
                "selects programs: every round draws fresh episodes, shared by "
                "its candidates and the parent they must beat; winners confirmed on more fresh episodes",
            )
            if store.selection_split() == "train"
            else ("dev", rng("dev", seeds.DEV), "selects programs: children race through the dev seeds"),
            ("holdout", rng("holdout", seeds.HOLDOUT), "confirms a new champion; the score reported"),
            ("audit", rng("audit", seeds.AUDIT), "evaluated once at the end; never selects anything"),
        ],
        "envs": envs,
        "notices": notices,
        "isolation": sorted(isolation.items()),
        "versions": _versions(),
        "config": "\n".join(f"{k} = {json.dumps(v)}" for k, v in sorted(cfg.items())),
    }


def _baseline_label(store: RunStore) -> str:
    cfg = store.config
    name = str(cfg["algo"]).upper() if cfg.get("kind") == "baseline" and cfg.get("algo") else None
    name = name or config_value(cfg, "label", "algorithm", "generator")
    return f"{store.run_dir.name} ({name})" if name else store.run_dir.name


def _script_hashes(env, name: str) -> str:
    """CSP hashes of the template's own inline scripts, read from the template file itself so that
    nothing rendered into the page (program text, notes, names) could ever be allowed to run."""
    import base64
    import hashlib

    source = env.loader.get_source(env, name)[0]
    scripts = re.findall(r"<script>(.*?)</script>", source, flags=re.DOTALL)
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts
    )


def build_report(
    run_dir: str | Path, baselines: Sequence[str | Path] = (), crashes: bool = False, last: int = DEFAULT_LAST
) -> str:
    """The report as one HTML string; with ``crashes``, the champion's failed held-out episodes are
    replayed for their last ``last`` decisions and GIFs (``report/crashes.py``)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    with RunStore.open(run_dir) as store:
        champ = champion_id(store)
        curves = [learning_curve(store, "this run")]
        summary = _summary(store, champ)
        target = _num(store.config.get("target"))
        lineage, diffs = _lineage(store, champ)
        costs = _costs(store)
        protocol = _protocol(store, champ)
        best_html = _champion_html(store.program(champ)) if champ is not None else None
        shields = shield_rows(store)
        crash = crash_section(store, champ, last) if crashes else {"computed": False}
    baseline_rows = []
    for b in baselines:
        c, row = _baseline(b)
        curves.append(c)
        baseline_rows.append(row)
    env = Environment(
        loader=PackageLoader("scriptrl", "glassbox/report/templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    template = env.get_template("report.html.j2")
    return template.render(
        script_hashes=_script_hashes(env, "report.html.j2"),
        summary=summary,
        plots=_plots(curves, target),
        lineage=lineage,
        diffs=diffs,
        costs=costs,
        protocol=protocol,
        best_html=best_html,
        shields=shields,
        crash=crash,
        baselines=baseline_rows,
        pygments_css=_pygments_css(),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _summary(store: RunStore, champ: int | None) -> dict:
    """The run at a glance: where it stands, why it stopped, and the champion's three scores."""
    cfg = store.config
    return {
        "run_dir": str(store.run_dir),
        "env": config_value(cfg, "env", "env_id") or "unknown environment",
        "status": run_status(store),
        "created": store.meta().get("created", "-"),
        "stop": next(
            (ev["data"].get("reason") or ev["data"].get("status") for ev in reversed(store.events("stop"))),
            None,
        ),
        "iterations": (store.load_state() or {}).get("iteration"),
        "programs": len(store.programs()),
        "evaluations": len(store.evaluations()),
        "champion": champ,
        "dev": _ci(store.selection_score(champ)) if champ is not None else "-",
        "holdout": _ci(store.best_evaluation(champ, "holdout")) if champ is not None else "-",
        "audit": _ci(store.best_evaluation(champ, "audit")) if champ is not None else "-",
        "target": _num(cfg.get("target")),
        "success": _success(store.best_evaluation(champ, "holdout")) if champ is not None else None,
        "audit_success": _success(store.best_evaluation(champ, "audit")) if champ is not None else None,
        "success_rule": _success_rule(cfg),
    }


def _champion_html(champ_row: dict | None) -> str | None:
    """The champion's source, highlighted; cut where it is too long to show (an exported network)."""
    if not champ_row:
        return None
    src = champ_row["source"]
    if len(src) > _MAX_SHOWN_SOURCE:
        src = (
            src[:_MAX_SHOWN_SOURCE].rsplit("\n", 1)[0]
            + f"\n# ... ({len(champ_row['source']):,} characters in all)\n"
        )
    return _highlight(src, "python")


def _baseline(run_dir: str | Path) -> tuple[Curve, dict]:
    """A baseline run's curve and its row in the comparison table."""
    try:
        with RunStore.open(run_dir) as bstore:
            c = learning_curve(bstore, _baseline_label(bstore))
            benv = config_value(bstore.config, "env", "env_id")
    except UserError as e:
        raise UserError(f"--baseline {run_dir}: {e}") from None
    best_hold = max((y for _, y in c.holdout_by_steps), default=None)
    row = {
        "label": c.label,
        "env": benv or "-",
        "holdout": _fmt(best_hold),
        "steps": f"{c.total_steps:,}" if c.total_steps else "-",
        "empty": c.empty(),
    }
    return c, row


def _plots(curves: list[Curve], target: float | None) -> dict[str, str | None]:
    return {
        "iteration": svg_plot(
            curves, "iteration", "Best score by iteration", "iteration", "mean return", target, "it"
        ),
        "steps": svg_plot(
            curves,
            "steps",
            "Best score by env steps spent learning",
            "env steps (search, or a baseline's training)",
            "mean return",
            target,
            "st",
        ),
    }


def write_report(
    run_dir: str | Path,
    output: str | Path | None = None,
    baselines: Sequence[str | Path] = (),
    crashes: bool = False,
    last: int = DEFAULT_LAST,
) -> Path:
    """Write the report (default: report.html in the run folder) and return its path."""
    html = build_report(run_dir, baselines, crashes, last)
    out = Path(output).expanduser() if output else Path(run_dir).expanduser() / "report.html"
    if re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html):  # pragma: no cover - a template bug
        raise RuntimeError("the report refers to a network resource; it must be self-contained")
    return write_output(out, html)
