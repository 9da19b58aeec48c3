"""Training a Stable-Baselines3 baseline and recording it as a scriptrl run.

The run mirrors the search's seed protocol so the two can be compared line for line:
every checkpoint (every ``eval_every`` training steps, and at least every ~1/30 of the
time budget) is exported to a numpy program, stored as a program and scored on the whole
dev split (split "dev", stage "curve", with a "curve" event holding training env steps and
seconds); a new dev best is confirmed on holdout under the same rule the search uses, the
champion gets a "promotion" event and ``best_policy.py``, and the final champion is scored
once on audit. The training interactions between checkpoints are recorded as an
evaluation of split "train" (the episodes the agent really played, with its exploration
noise) so run totals count them, while ``top_programs("dev")`` never sees them.

Env steps and seconds in curve and promotion events are the agent's training steps and
training wall time only; the measuring (dev, holdout, audit episodes) is left out. That
favours the baseline over a scriptrl search, whose every evaluation is learning and counts.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scriptrl import seeds
from scriptrl.baselines.runner import MAX_SOURCE_BYTES, _Runner
from scriptrl.baselines.zoo import ACTION_SPACES, ZooEntry, source_note, zoo_entry
from scriptrl.errors import UserError

__all__ = ["MAX_SOURCE_BYTES", "SPLITS", "default_run_dir", "print_progress", "train_baseline"]

SPLITS = {name: seeds.DEFAULT.range_of(name) for name in seeds.SPLIT_NAMES}


def _import_sb3():
    try:
        import stable_baselines3
        import torch
    except ImportError as e:
        raise UserError(
            "baselines need the extra: pip install 'scriptrl[baselines]'"
            f" ({e.name or 'torch'} is not installed)"
        ) from None
    # One thread: on these 2-core machines torch's default thread pool made training 10-20x slower.
    torch.set_num_threads(1)
    return stable_baselines3, torch


def default_run_dir(env: str, algo: str, root: str | Path = "runs") -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in env)
    return Path(root) / f"{safe}-{algo}-{time.strftime('%Y%m%d-%H%M%S')}"


def train_baseline(
    env: str,
    algo: str = "ppo",
    *,
    run_dir: str | Path | None = None,
    max_env_steps: int | None = None,
    max_seconds: float | None = None,
    seed: int = 0,
    target: float | None = None,
    eval_every: int | None = None,
    progress: Callable[[dict], None] | None = None,
):
    """Train ``algo`` on ``env`` with the zoo's settings and return a ``TrainResult``.

    Stops at the first of: the zoo's own ``n_timesteps``, ``max_env_steps`` training steps,
    ``max_seconds`` of training time, or a champion whose holdout mean reaches ``target`` (the
    environment's solved threshold by default, as ``scriptrl train`` does). The time budget
    counts training only, like the seconds reported: the measuring we add must not eat into
    the baseline's learning.
    """
    from scriptrl.envs import resolve_env

    entry = zoo_entry(algo, env)
    renv = resolve_env(env)
    _check_request(entry, renv, max_env_steps=max_env_steps, max_seconds=max_seconds, eval_every=eval_every)
    sb3, torch = _import_sb3()
    target = target if target is not None else renv.solved_threshold
    total = min(entry.n_timesteps, max_env_steps) if max_env_steps else entry.n_timesteps
    run_dir = Path(run_dir) if run_dir else default_run_dir(renv.id, entry.algo)
    config = _run_config(
        env,
        entry,
        sb3,
        torch,
        run_dir=run_dir,
        total=total,
        max_env_steps=max_env_steps,
        max_seconds=max_seconds,
        seed=seed,
        target=target,
        eval_every=eval_every,
    )
    from scriptrl.store import RunStore

    store = RunStore.create(run_dir, config)
    try:
        runner = _Runner(store, renv, entry, config, progress)
        try:
            runner.run()
        except KeyboardInterrupt:
            store.add_event(
                "stop", {"status": "interrupted", "reason": "interrupted (baselines do not resume)"}
            )
            raise
        return runner.result()
    finally:
        store.close()


def _check_request(entry: ZooEntry, renv, **budgets: float | None) -> None:
    """Refuse an algorithm the environment's action space does not fit, and budgets that are not positive."""
    probe = renv.make()
    space = type(probe.action_space).__name__
    probe.close()
    if space not in ACTION_SPACES[entry.algo]:
        allowed = " or ".join(ACTION_SPACES[entry.algo])
        raise UserError(f"{entry.algo.upper()} needs a {allowed} action space; {renv.id} has {space}")
    for name, v in budgets.items():
        if v is not None and v <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive (got {v})")


def _run_config(
    env: str,
    entry: ZooEntry,
    sb3,
    torch,
    *,
    run_dir: Path,
    total: int,
    max_env_steps: int | None,
    max_seconds: float | None,
    seed: int,
    target: float | None,
    eval_every: int | None,
) -> dict[str, Any]:
    """The config stored with the run: the request, the zoo's hyperparameters and the versions."""
    import gymnasium

    return {
        "env": env,
        "generator": entry.algo,
        "method": entry.algo,
        "kind": "baseline",
        "algo": entry.algo,
        "policy": "MlpPolicy",
        "hyperparams": entry.to_dict(),
        "hyperparams_source": entry.source,
        "hyperparams_file": source_note(),
        "total_timesteps": total,
        "max_env_steps": max_env_steps,
        "max_seconds": max_seconds,
        "seed": seed,
        "target": target,
        "eval_every": eval_every or _default_eval_every(total, entry),
        "dev": list(SPLITS["dev"]),
        "holdout": list(SPLITS["holdout"]),
        "audit": list(SPLITS["audit"]),
        "run_dir": str(run_dir),
        "versions": {
            "stable_baselines3": sb3.__version__,
            "torch": torch.__version__,
            "gymnasium": gymnasium.__version__,
            "python": platform.python_version(),
        },
        "torch_threads": torch.get_num_threads(),
    }


def _default_eval_every(total: int, entry: ZooEntry) -> int:
    """About 40 curve points over the zoo's budget, never finer than one vectorized step."""
    return max(1000, entry.n_envs, total // 40)


def print_progress(line: dict) -> None:
    """One line per checkpoint on stderr, so a person watching sees the curve being drawn."""
    hold = "" if line["holdout"] is None else f"  holdout {line['holdout']:.2f}"
    sys.stderr.write(
        f"  {line['env_steps']:>10,} steps  {line['seconds']:7.1f} s  dev {line['dev']:9.2f}{hold}\n"
    )
    sys.stderr.flush()
