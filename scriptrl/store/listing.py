"""``scriptrl runs``: the runs under a folder, their status and one summary line each."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from pathlib import Path

from scriptrl.errors import UserError
from scriptrl.store.config_spelling import config_value
from scriptrl.store.database import RunStore
from scriptrl.store.schema import DB_NAME


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def run_status(store: RunStore) -> str:
    """ "finished"/the stop reason, "running", "interrupted" (killed without a stop) or "created"."""
    with store._lock:
        row = (
            store._db()
            .execute(
                "SELECT kind, data FROM events WHERE kind IN ('start', 'resume', 'stop')"
                " ORDER BY id DESC LIMIT 1"
            )
            .fetchone()
        )
    if row is None:
        return "created"
    data = json.loads(row["data"]) or {}
    if row["kind"] == "stop":
        return str(data.get("status") or data.get("reason") or "stopped")
    pid, host = data.get("pid"), data.get("host")
    if isinstance(pid, int) and host == socket.gethostname():
        return "running" if _pid_alive(pid) else "interrupted"
    return "running"


def run_summary(store: RunStore) -> dict:
    """One line of ``scriptrl runs``: what was learned, on what, at what cost."""
    totals = store.totals()
    dev = store.top_programs("train", 1) or store.top_programs("dev", 1)  # selection: the training stream
    holdout = store.top_programs("holdout", 1)
    return {
        "run_dir": str(store.run_dir),
        "env": config_value(store.config, "env", "env_id"),
        "generator": config_value(store.config, "generator", "generators"),
        "created": store.meta().get("created"),
        "status": run_status(store),
        "best_dev": dev[0]["mean"] if dev else None,
        "best_dev_program": dev[0]["id"] if dev else None,
        "best_holdout": holdout[0]["mean"] if holdout else None,
        "best_holdout_program": holdout[0]["id"] if holdout else None,
        "env_steps": totals["env_steps"],
        "programs": totals["programs"],
        "cost": totals["cost_usd"],
    }


def list_runs(root: str | Path) -> list[dict]:
    """Runs under ``root`` (itself, its folders and theirs), oldest first.

    A run that cannot be read is listed with its error as status rather than hiding the
    others; the listing is how a person finds out that a run is damaged.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"{root} is not a folder (give the folder that holds your run folders)")
    candidates = [root]
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        candidates.append(child)
        try:
            candidates.extend(sorted(p for p in child.iterdir() if p.is_dir()))
        except OSError:
            continue
    out = []
    for d in candidates:
        if not (d / DB_NAME).is_file():
            continue
        try:
            with RunStore.open(d) as store:
                out.append(run_summary(store))
        except (UserError, sqlite3.Error) as e:
            out.append(
                {
                    "run_dir": str(d),
                    "env": None,
                    "generator": None,
                    "created": None,
                    "status": f"unreadable: {e}",
                    "best_dev": None,
                    "best_dev_program": None,
                    "best_holdout": None,
                    "best_holdout_program": None,
                    "env_steps": None,
                    "programs": None,
                    "cost": None,
                }
            )
    out.sort(key=lambda r: (r["created"] or "", r["run_dir"]))
    return out
