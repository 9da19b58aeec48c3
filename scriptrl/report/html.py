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
import io
import json
import math
import platform
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from scriptrl import seeds
from scriptrl.errors import UserError
from scriptrl.export import champion_id, lineage_ids
from scriptrl.store import RunStore, config_value, run_status, write_atomic

SEARCH_STAGES = ("cheap", "full")
_SEARCH_EVENT_KINDS = {"start", "resume", "stop", "tune", "migration", "promotion"}
_MAX_DIFF_LINES = 120
_BASELINE_COLORS = ("#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")
_MAX_DIFFS = 40  # most recent parent -> child edges shown; a baseline can have hundreds of checkpoints
_MAX_DIFF_SOURCE = 60_000  # characters; beyond this a program is an exported network, not something to diff
_MAX_SHOWN_SOURCE = 200_000


@dataclass
class Curve:
    """Best-so-far scores of one run, against iteration and against search env steps."""

    label: str
    dev_by_iteration: list[tuple[float, float]] = field(default_factory=list)
    holdout_by_iteration: list[tuple[float, float]] = field(default_factory=list)
    dev_by_steps: list[tuple[float, float]] = field(default_factory=list)
    holdout_by_steps: list[tuple[float, float]] = field(default_factory=list)
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


def _running_best(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    best = -math.inf
    for x, y in sorted(points, key=lambda p: p[0]):
        if y > best:
            best = y
            out.append((x, y))
    return out


def learning_curve(store: RunStore, label: str) -> Curve:
    """Best dev (full evaluations where there are any) and best confirmed holdout, as they improved."""
    programs = {p["id"]: p for p in store.programs()}
    evals = store.evaluations()
    events = store.events()
    curve = Curve(label)

    # A timeline of learning steps: search evaluations, tuning rounds and (for a baseline)
    # training interaction, in the order they were recorded.
    timeline = [(e["created"], e["id"], "eval", e) for e in evals] + [
        (ev["created"], ev["id"], "event", ev) for ev in events
    ]
    timeline.sort(key=lambda t: (t[0], t[2] == "event", t[1]))
    selecting = store.selection_split()
    dev_rows = [e for e in evals if e["split"] == selecting and e["mean"] is not None]
    full_dev = [e for e in dev_rows if e["stage"] != "cheap"] or dev_rows
    full_ids = {e["id"] for e in full_dev}
    steps = 0
    dev_steps, hold_steps = [], []
    step_at: dict[int, int] = {}  # evaluation id -> learning steps spent when it was recorded
    for _, _, what, row in timeline:
        if what == "eval":
            if row["stage"] in SEARCH_STAGES or row["split"] == "train":
                steps += int(row["env_steps"] or 0)
            step_at[row["id"]] = steps
            if row["id"] in full_ids:
                dev_steps.append((steps, row["mean"]))
        else:
            data = row.get("data") or {}
            if row["kind"] == "tune":
                steps += int(_num(data.get("env_steps")) or 0)
            elif row["kind"] == "promotion" and _num(data.get("holdout")) is not None:
                x = _num(data.get("env_steps"))  # a baseline records its training steps itself
                hold_steps.append((steps if x is None else x, data["holdout"]))
    checkpoints = [
        ev
        for ev in events
        if ev["kind"] not in _SEARCH_EVENT_KINDS and _num((ev.get("data") or {}).get("env_steps")) is not None
    ]
    if any(_num(ev["data"].get("dev")) is not None for ev in checkpoints):
        dev_steps = []  # the run states its own curve against its own steps: that is the one to draw
    curve.dev_by_steps = _running_best(dev_steps)
    curve.total_steps = steps

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
            hold_steps.append((step_at.get(e["id"], 0), e["mean"]))
            prog = programs.get(e["program_id"])
            if prog is not None:
                hold_iter.append((prog["iteration"], e["mean"]))
    curve.holdout_by_steps = _running_best(hold_steps)
    curve.holdout_by_iteration = _running_best(hold_iter)

    # Checkpoint-style events (a baseline learner's periodic evaluations).
    for ev in checkpoints:
        d = ev["data"]
        x = _num(d.get("env_steps"))
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
    return curve


# --------------------------------------------------------------------------- plots


def _svg_plot(
    curves: list[Curve], by: str, title: str, xlabel: str, ylabel: str, target: float | None, salt: str
) -> str | None:
    """One inline SVG; the run first in solid lines, baselines dashed. None when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    series = []
    for i, c in enumerate(curves):
        end = c.total_steps if by == "steps" else c.last_iteration  # a line runs on to where its run stopped
        for split, marker in (("dev", "o"), ("holdout", "s")):
            pts = getattr(c, f"{split}_by_{by}")
            if pts:
                series.append((i, c.label, split, marker, pts, end))
    if not series:
        return None
    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": salt,
            "font.size": 10,
            "font.family": ["DejaVu Sans", "sans-serif"],
        }
    ):
        fig, ax = plt.subplots(figsize=(10.0, 3.9))
        try:
            for i, label, split, marker, pts, end in series:
                xs = [x for x, _ in pts] + [max(end, pts[-1][0])]
                ys = [y for _, y in pts] + [pts[-1][1]]
                if i == 0:  # this run: solid, blue dev and red holdout
                    color, style, width = {"dev": "#1f77b4", "holdout": "#d62728"}[split], "-", 1.9
                else:  # baselines: one colour each, dev dashed and holdout dotted
                    color = _BASELINE_COLORS[(i - 1) % len(_BASELINE_COLORS)]
                    style, width = (0, (5, 3)) if split == "dev" else (0, (1.5, 1.5)), 1.5
                ax.step(
                    xs,
                    ys,
                    where="post",
                    linestyle=style,
                    color=color,
                    linewidth=width,
                    label=f"{label}: best {split}",
                )
                ax.plot(xs[:-1], ys[:-1], marker, color=color, markersize=3.5)
            if target is not None:
                ax.axhline(target, color="#555", linewidth=0.8, linestyle=":", label=f"target {target:g}")
            ax.set_title(title, fontsize=11)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            if by == "iteration":
                from matplotlib.ticker import MaxNLocator

                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
            fig.tight_layout()
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        finally:
            plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


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
                "holdout": _ci(hold) if hold else "-",
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
    wall = [
        ("search wall time (seconds the search ran, over resumes)", _fmt(state.get("seconds"), ",.1f")),
        ("first to last event", _fmt(span, ",.1f")),
        ("evaluation time (sum over evaluations)", _fmt(sum(e["seconds"] for e in evals), ",.1f")),
        ("generator latency (sum over calls)", _fmt(total["latency"], ",.1f")),
        (
            "env steps: search (cheap + full dev, tuning)",
            f"{sum(e['env_steps'] for e in evals if e['stage'] in SEARCH_STAGES) + sum(int(_num((ev['data'] or {}).get('env_steps')) or 0) for ev in events if ev['kind'] == 'tune'):,}",
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
    isolation = {}
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


def build_report(run_dir: str | Path, baselines: list[str | Path] = ()) -> str:
    """The report as one HTML string."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    with RunStore.open(run_dir) as store:
        cfg = store.config
        env_id = config_value(cfg, "env", "env_id") or "unknown environment"
        champ = champion_id(store)
        curves = [learning_curve(store, "this run")]
        champ_row = store.program(champ) if champ is not None else None
        summary = {
            "run_dir": str(store.run_dir),
            "env": env_id,
            "status": run_status(store),
            "created": store.meta().get("created", "-"),
            "stop": next(
                (
                    ev["data"].get("reason") or ev["data"].get("status")
                    for ev in reversed(store.events("stop"))
                ),
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
        }
        lineage, diffs = _lineage(store, champ)
        costs = _costs(store)
        protocol = _protocol(store, champ)
        best_html = None
        if champ_row:
            src = champ_row["source"]
            if len(src) > _MAX_SHOWN_SOURCE:
                src = (
                    src[:_MAX_SHOWN_SOURCE].rsplit("\n", 1)[0]
                    + f"\n# ... ({len(champ_row['source']):,} characters in all)\n"
                )
            best_html = _highlight(src, "python")
    baseline_rows = []
    for b in baselines:
        try:
            with RunStore.open(b) as bstore:
                c = learning_curve(bstore, _baseline_label(bstore))
                benv = config_value(bstore.config, "env", "env_id")
        except UserError as e:
            raise UserError(f"--baseline {b}: {e}") from None
        curves.append(c)
        best_hold = max((y for _, y in c.holdout_by_steps), default=None)
        baseline_rows.append(
            {
                "label": c.label,
                "env": benv or "-",
                "holdout": _fmt(best_hold),
                "steps": f"{c.total_steps:,}" if c.total_steps else "-",
                "empty": c.empty(),
            }
        )
    target = summary["target"]
    plots = {
        "iteration": _svg_plot(
            curves, "iteration", "Best score by iteration", "iteration", "mean return", target, "it"
        ),
        "steps": _svg_plot(
            curves,
            "steps",
            "Best score by env steps spent learning",
            "env steps (search, or a baseline's training)",
            "mean return",
            target,
            "st",
        ),
    }
    env = Environment(
        loader=PackageLoader("scriptrl", "report/templates"), autoescape=select_autoescape(["html", "j2"])
    )
    template = env.get_template("report.html.j2")
    return template.render(
        script_hashes=_script_hashes(env, "report.html.j2"),
        summary=summary,
        plots=plots,
        lineage=lineage,
        diffs=diffs,
        costs=costs,
        protocol=protocol,
        best_html=best_html,
        baselines=baseline_rows,
        pygments_css=_pygments_css(),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_report(
    run_dir: str | Path, output: str | Path | None = None, baselines: list[str | Path] = ()
) -> Path:
    """Write the report (default: report.html in the run folder) and return its path."""
    html = build_report(run_dir, baselines)
    out = Path(output).expanduser() if output else Path(run_dir).expanduser() / "report.html"
    if re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html):  # pragma: no cover - a template bug
        raise RuntimeError("the report refers to a network resource; it must be self-contained")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, html)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror} (choose another -o path)") from None
    return out
