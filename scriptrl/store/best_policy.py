"""``best_policy.py``: the current champion as a standalone file with a comment header saying
what scored what on which seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scriptrl.store.atomic import write_atomic
from scriptrl.store.encoding import dumps
from scriptrl.success_rate import format_percent

BEST_POLICY_NAME = "best_policy.py"


def policy_header(
    env,
    champion: Mapping[str, Any],
    splits: Mapping[str, Sequence[int]],
    audit: float | None,
    written_by: str,
    method: Mapping[str, Any] | None = None,
    dev_label: str | None = None,
) -> dict[str, Any]:
    """The comment block on top of best_policy.py: what scored what on which seeds, and who wrote
    it; ``env`` is a resolved environment, ``splits`` the run's dev/holdout/audit seed ranges.
    ``dev_label`` names the selection score when it is not the dev split (the training stream)."""
    dev, hold, aud = splits["dev"], splits["holdout"], splits["audit"]
    h: dict[str, Any] = {
        "env": env.label(),
        "gymnasium": env.gymnasium_version,
        "program id": champion.get("id"),
    }
    h.update(method or {})
    h[dev_label or f"dev mean (seeds {dev[0]}-{dev[1] - 1})"] = round(champion.get("dev", 0.0), 3)
    h[f"holdout mean (seeds {hold[0]}-{hold[1] - 1})"] = round(champion.get("holdout", 0.0), 3)
    h["holdout 95% CI"] = [round(x, 3) for x in champion.get("ci95", [])]
    desc = getattr(env, "description", None)
    if champion.get("success") is not None and desc is not None and desc.success:
        h["holdout success"] = format_percent(champion["success"], champion.get("success_ci95"))
        h["success means"] = f"{desc.success_text or desc.success} ({desc.success})"
    if audit is not None:
        h[f"audit mean (seeds {aud[0]}-{aud[1] - 1})"] = round(audit, 3)
    h["written by"] = written_by
    return h


def _one_line(value: Any) -> str:
    """Header values become Python comments: a newline would turn the rest into code."""
    if isinstance(value, str):
        text = value
    else:
        text = dumps(value) if isinstance(value, Mapping | list | tuple) else str(value)
    return " ".join(text.replace("\x00", " ").splitlines()).strip()


def write_best_policy(run_dir: Path, source: str, header: Mapping[str, Any]) -> Path:
    """Publish ``source`` under ``header`` as the run's best_policy.py, never seen half-written."""
    lines = [f"# {_one_line(k).replace(':', ' ')}: {_one_line(v)}" for k, v in header.items()]
    text = "\n".join(lines) + ("\n\n" if lines else "") + source + ("" if source.endswith("\n") else "\n")
    return write_atomic(run_dir / BEST_POLICY_NAME, text)
