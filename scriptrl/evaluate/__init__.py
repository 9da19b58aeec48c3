"""The trusted evaluator: seed splits, the episode loop, statistics and episode digests.

The environment lives here and only here. The policy runs in a sandbox worker that gets
observations of many episodes in one message and returns their actions in one, and the
episodes are split into two lanes so the worker computes one lane's actions while this
process steps the other's environments. Rewards are computed here; nothing the worker
says counts except the actions, and each is validated before ``env.step``.

The package: ``config`` (``EvalConfig``), ``results`` (``EvalResult``, ``Episode``, statistics,
``combine_results``), ``loop`` (the episode loop), ``null_policy`` (the floor of a failed
episode) and ``digest`` (what an episode digest keeps).
"""

from __future__ import annotations

import time
from dataclasses import replace

from scriptrl.envs import ResolvedEnv, resolve_env
from scriptrl.envs.success_rule import rule_of
from scriptrl.evaluate.config import EvalConfig
from scriptrl.evaluate.loop import _EpisodeLoop
from scriptrl.evaluate.null_policy import _cap_failures, null_action
from scriptrl.evaluate.results import (
    Episode,
    EvalResult,
    _from_episodes,
    _summarize,
    combine_results,
    confidence_interval,
)
from scriptrl.evaluate.stall import stall_allowed
from scriptrl.program import Program, check_source
from scriptrl.sandbox.client import release_spare_workers
from scriptrl.seeds import SeedSplits

__all__ = [
    "Episode",
    "EvalConfig",
    "EvalResult",
    "SeedSplits",
    "_EpisodeLoop",
    "_from_episodes",
    "combine_results",
    "confidence_interval",
    "evaluate",
    "null_action",
    "release_spare_workers",
]


def _as_source(program: Program | str) -> Program:
    return program if isinstance(program, Program) else Program(source=program)


def evaluate(
    program: Program | str,
    env: ResolvedEnv | str,
    seeds: list[int],
    config: EvalConfig | None = None,
    split: str = "custom",
) -> EvalResult:
    """Run one program for one episode per seed and return its statistics and digests."""
    config = screening_config(config or EvalConfig(), split, seeds)
    prog = _as_source(program)
    renv = resolve_env(env) if isinstance(env, str) else env
    started = time.perf_counter()
    episodes = [Episode(seed=s) for s in seeds]
    isolation: dict[str, str] = {}
    env_steps = 0

    problems = (
        check_source(prog.source, prog.name, allow_module_state=config.allow_module_state)
        if config.static_checks
        else []
    )
    note = None
    if problems:
        defined = rule_of(renv) is not None
        for ep in episodes:
            ep.end, ep.reason = "failure", "rejected before running: " + problems[0]
            ep.success = False if defined else None
    else:
        loop = _EpisodeLoop(prog, renv, episodes, config)
        isolation, env_steps = loop.run()
        note = unreported_note(loop.unreported)
    env_steps += _cap_failures(renv, episodes, config)
    seconds = time.perf_counter() - started
    return _summarize(prog, renv, split, episodes, isolation, env_steps, seconds, note)


def screening_config(config: EvalConfig, split: str, seeds: list[int]) -> EvalConfig:
    """``config`` without its stall rule where the episodes are not screens (holdout, audit)."""
    if config.stall is not None and not stall_allowed(split, seeds):
        return replace(config, stall=None)
    return config


def unreported_note(unreported: dict[str, int]) -> str | None:
    """Why a success rate may read lower than it should: info keys the rule names went unreported."""
    if not unreported:
        return None
    keys = ", ".join(f"{k} ({n} episode{'s' if n != 1 else ''})" for k, n in sorted(unreported.items()))
    return (
        f"the environment did not report {keys}; those episodes count as unsuccessful "
        "(check the info keys the success expression names)"
    )
