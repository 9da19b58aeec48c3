"""``scriptrl verify``: property-based checks of a policy, then a robustness gate.

Why both: a policy's score says how it behaves on the observations its episodes happened
to visit. Properties say how it behaves on *every* observation the space allows: it
always returns a valid action, never raises, gives the same action for the same
observation, and answers within a time bound. ``hypothesis`` generates the observations
(within the space's bounds, or the range seen in rollouts for unbounded components, with
the bounds themselves drawn often because faults hide in corners) and shrinks a failure
to a small counterexample. The robustness gate then asks how much of its score the
policy keeps under observation noise, over twice the usual horizon and under perturbed
physics, measured against a uniformly random policy on the same seeds, so "keeps 80 %"
means the same thing on every environment.

Where the policy runs: observations are generated here, in the trusted process, and sent
in batches to the ordinary sandbox worker (the same client, codec and action checks as
evaluation); scores come from ``scriptrl.evaluate`` on a wrapped environment. Only with
``unsafe_in_process`` does a (trusted) policy run in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from scriptrl.envs import ResolvedEnv, resolve_env
from scriptrl.errors import UserError
from scriptrl.glassbox.verify.asker import _Asker, _show
from scriptrl.glassbox.verify.checks import observation_bounds, observation_strategy, property_checks
from scriptrl.glassbox.verify.perturb import (
    HOLDOUT_START,
    NOISE_LEVELS,
    PHYSICS,
    NoisyObservation,
    PerturbedEnv,
)
from scriptrl.glassbox.verify.report import print_verify_report
from scriptrl.glassbox.verify.results import (
    CHECKS_SHARE,
    MAX_SECONDS,
    Budget,
    Check,
    Robustness,
    VerifyReport,
)
from scriptrl.glassbox.verify.robustness import levels_text, robustness_gate
from scriptrl.program import Program


def verify(
    program: Program | str,
    env: ResolvedEnv | str,
    *,
    seed: int = 0,
    examples: int = 60,
    batch: int = 32,
    time_limit: float = 0.02,
    episodes: int = 20,
    noise_levels: Sequence[float] = NOISE_LEVELS,
    min_retention: float = 0.75,
    robustness: bool = True,
    unsafe_in_process: bool = False,
    gate: bool = False,
    max_seconds: float = MAX_SECONDS,
    progress: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Property checks, then (unless ``robustness`` is False) the robustness gate, all within ``max_seconds``.

    The property checks get ``CHECKS_SHARE`` of the limit (all of it without robustness),
    the gate the rest, so a program that is slow somewhere cannot starve the phases after
    it. Whatever could not finish in time is reported as not finished.
    """
    prog = program if isinstance(program, Program) else Program(source=program)
    renv = resolve_env(env) if isinstance(env, str) else env
    for name, value in (("--examples", examples), ("--batch", batch), ("--episodes", episodes)):
        if value < 1:
            raise UserError(f"{name} must be at least 1 (got {value})")
    if not max_seconds > 0:
        raise UserError(f"--max-seconds must be positive (got {max_seconds})")
    budget = Budget(max_seconds)
    if progress:
        progress("property checks")
    checks_budget = Budget(max_seconds * (CHECKS_SHARE if robustness else 1.0), budget.start)
    checks, bounds, isolation = property_checks(
        prog,
        renv,
        seed=seed,
        examples=examples,
        batch=batch,
        time_limit=time_limit,
        unsafe=unsafe_in_process,
        budget=checks_budget,
    )
    rows: list[Robustness] = []
    if robustness:
        rows = robustness_gate(
            prog,
            renv,
            episodes=episodes,
            noise_levels=noise_levels,
            min_retention=min_retention,
            gate=gate,
            unsafe=unsafe_in_process,
            progress=progress,
            budget=budget,
        )
    return VerifyReport(
        renv.label(),
        prog.name,
        checks,
        rows,
        bounds,
        isolation,
        min_retention,
        gate=gate,
        max_seconds=max_seconds,
        seconds=time.monotonic() - budget.start,
        levels=levels_text(min_retention, noise_levels, gate) if robustness else "",
    )


def private_hypothesis_storage() -> None:
    """Keep hypothesis' cache out of the user's working directory (it writes ``.hypothesis/``
    there by default); a directory the user chose with HYPOTHESIS_STORAGE_DIRECTORY wins."""
    import os
    from pathlib import Path

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scriptrl" / "hypothesis"
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(cache))


__all__ = [
    "MAX_SECONDS",
    "Budget",
    "HOLDOUT_START",
    "NOISE_LEVELS",
    "PHYSICS",
    "Check",
    "NoisyObservation",
    "PerturbedEnv",
    "Robustness",
    "VerifyReport",
    "_Asker",
    "_show",
    "observation_bounds",
    "observation_strategy",
    "print_verify_report",
    "private_hypothesis_storage",
    "property_checks",
    "robustness_gate",
    "verify",
]
