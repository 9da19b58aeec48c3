"""Inline SVG plots of learning curves, drawn by matplotlib: the run solid, baselines dashed.

Deterministic output (a fixed hash salt, no date or creator) so that the same run gives the
same page; text stays text (``svg.fonttype = none``) so that it can be searched and copied.
"""

from __future__ import annotations

import io
from typing import Any

from scriptrl.glassbox.report.curves import Curve

_BASELINE_COLORS = ("#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")


def svg_plot(
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
                style: Any
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
