"""The report's failed-episodes section (``scriptrl report --crashes``): the champion's held-out
episodes that failed, replayed through ``explain`` for their last decisions, the worst three as GIFs.

The run database keeps each held-out episode's seed, end and success (the evaluation digest), not
its decisions, so the report replays exactly the failed seeds, on the run's own environment (its
make-time options and success rule), in the tracing sandbox; the GIFs come from ``render``'s
renderer and are inlined as ``data:`` images, so the page stays one file that loads nothing.
A replay runs the policy with the first failed seed as its own seed, so a policy that draws
random numbers may not fail again; the section says how many did.
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

from scriptrl.glassbox.crash_view import action_text, condition_text, ending_text, observation_text
from scriptrl.glassbox.crashes import DEFAULT_LAST, is_failure, render_worst
from scriptrl.store import RunStore, config_value

#: GIFs in the page are drawn at this fraction of the environment's frame size.
GIF_SCALE = 0.5


def run_env(cfg: dict):
    """The run's environment as the search saw it: its id, imports, make-time options, success rule."""
    from scriptrl.envs import resolve_env
    from scriptrl.envs.success_rule import with_success

    env_id = config_value(cfg, "env", "env_id")
    renv = resolve_env(str(env_id), imports=cfg.get("imports") or (), options=cfg.get("env_options") or {})
    return with_success(renv, cfg.get("success"))


def failed_holdout_seeds(store: RunStore, champ: int) -> tuple[list[int], int]:
    """The champion's failed held-out seeds (by its best holdout evaluation's digest) and its episodes."""
    row = store.best_evaluation(champ, "holdout")
    digest = [e for e in (row or {}).get("digest") or [] if isinstance(e, dict)]
    failed = [int(e["seed"]) for e in digest if is_failure(str(e.get("end")), e.get("success"))]
    return failed, len(digest)


def crash_section(store: RunStore, champ: int | None, last: int = DEFAULT_LAST, gifs: bool = True) -> dict:
    """What the template shows: the replayed failures, worst first, each with rows and maybe a GIF."""
    from scriptrl.glassbox.trace import explain
    from scriptrl.program import Program

    if champ is None:
        return {"computed": True, "episodes": 0, "failed": 0, "crashes": []}
    seeds, n = failed_holdout_seeds(store, champ)
    out: dict[str, Any] = {"computed": True, "episodes": n, "failed": len(seeds), "crashes": []}
    if not seeds:
        return out
    program = Program(source=store.program(champ)["source"], name=f"program_{champ}.py")
    renv = run_env(store.config)
    ex = explain(program, renv, seeds=seeds, last=last)
    with tempfile.TemporaryDirectory(prefix="scriptrl-report-") as tmp:
        if gifs and ex.crashes:
            render_worst(program, renv, ex.crashes, tmp, scale=GIF_SCALE)
        out["crashes"] = [_view(c) for c in ex.crashes]
    out["replayed_failed"] = len(ex.crashes)
    return out


def _view(crash: dict) -> dict:
    gif = None
    if crash.get("gif"):
        gif = "data:image/gif;base64," + base64.b64encode(Path(crash["gif"]).read_bytes()).decode()
    return {
        "seed": crash["seed"],
        "ending": ending_text(crash),
        "gif": gif,
        "rows": [
            {
                "step": d["step"],
                "action": action_text(d),
                "line": d["line"] or "-",
                "code": d["code"] or "(no return reached)",
                "conditions": [condition_text(c) for c in d["conditions"]],
                "observation": observation_text(d["observation"]),
            }
            for d in crash["decisions"]
        ],
    }
