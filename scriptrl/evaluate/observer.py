"""What an observed run of the episode loop shows its observer: every reset and every decision.

``scriptrl.evaluate.evaluate`` keeps only statistics and digests; explain, verify and render
need each observation, action, trace or frame, so they run the same loop
(``evaluate._EpisodeLoop``) with an observer, through ``run_observed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import gymnasium

from scriptrl.envs import ResolvedEnv

if TYPE_CHECKING:
    from scriptrl.evaluate import Episode, EvalConfig
    from scriptrl.program import Program


@dataclass
class Step:
    """One decision as an observer sees it: what the policy saw, what it did, and (traced) why."""

    episode: int
    seed: int
    t: int
    obs: Any
    action: Any  # the validated action as passed to env.step (None when refused)
    reward: float
    trace: Any  # the tracing worker's untrusted record of the call (None when not traced)
    error: str | None = None  # why the action was refused (an exception, an invalid action)


class StepObserver(Protocol):
    """Sees every episode start and every decision of an observed run."""

    def on_reset(self, episode: int, env: gymnasium.Env) -> None: ...

    def on_step(self, step: Step, env: gymnasium.Env) -> None: ...


class _MakeWith:
    """``renv`` whose ``make`` adds keyword arguments (render's ``render_mode``)."""

    def __init__(self, renv: ResolvedEnv, kwargs: dict) -> None:
        self._renv, self._kwargs = renv, kwargs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._renv, name)

    def make(self, **extra: Any) -> gymnasium.Env:
        return self._renv.make(**{**self._kwargs, **extra})


def with_make_kwargs(renv: ResolvedEnv, kwargs: dict | None) -> ResolvedEnv:
    return _MakeWith(renv, kwargs) if kwargs else renv  # type: ignore[return-value]


def run_observed(
    program: Program,
    renv: ResolvedEnv,
    seeds: list[int],
    config: EvalConfig,
    observer: StepObserver,
    *,
    traced: bool = False,
    worker_seed: int | None = None,
    make_kwargs: dict | None = None,
) -> tuple[list[Episode], dict[str, str]]:
    """The evaluation loop, one episode per seed in lock-step, with ``observer`` seeing every
    reset and decision. A program or worker that cannot start raises (ProgramLoadError,
    WorkerFailure): a person asked for this run. Returns are as earned (not capped at the
    null policy's, as ``evaluate`` scores failures)."""
    from scriptrl.evaluate import Episode, _EpisodeLoop

    episodes = [Episode(seed=int(s)) for s in seeds]
    loop = _EpisodeLoop(program, with_make_kwargs(renv, make_kwargs), episodes, config, observer, traced)
    if worker_seed is not None:
        loop.run_seed = int(worker_seed)
    isolation, _ = loop.run(strict_open=True)
    return episodes, isolation
