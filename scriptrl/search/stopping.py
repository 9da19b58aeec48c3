"""Why a search stops, and what its stop event says when it stops short of the target.

Stops: the target (a champion's holdout reaches it, and with ``--target-success`` its holdout
success rate reaches that too; a success target alone when no return target is given). The
environment's solved threshold is only a default target: when the user gives a budget and no
``--target``, the search goes on until the budget ends, as a PPO run uses its timesteps, since
"solved" (LunarLander's 200) is far from the best a program can do; it stops early only at the
description's ``max_return``, a return no episode can beat (CartPole's 500), unless the user
gave a ``--target`` of their own. With ``--init`` and a
budget the search also goes on, since the user's program may already meet the target. Then a budget
(iterations, env steps, seconds, cost), a stall (``stall_rounds`` rounds without a race win;
off unless asked for), or no valid program at all. Short of the target, the stop event also
carries a verdict: ``overfitting`` when the champion's training-stream mean is above its holdout
beyond the 95 % CI, else ``stalled`` when the last rounds found nothing, else ``out of budget``
while it was still improving.
"""

from __future__ import annotations

from dataclasses import dataclass

from scriptrl.search.champion import Champion, overfitting_gap
from scriptrl.search.config import TrainConfig

#: Rounds without a win after which a budget stop is called "stalled" rather than "out of budget".
STALL_VERDICT_ROUNDS = 20


@dataclass(frozen=True)
class Stop:
    kind: str  # target | budget | stalled | empty
    reason: str


def reached(champion: Champion | None, target: float | None, target_success: float | None) -> bool:
    """Whether the confirmed (holdout) champion meets every target given, and at least one is."""
    if champion is None or (target is None and target_success is None):
        return False
    if target is not None and champion.holdout < target:
        return False
    if target_success is None:
        return True
    return champion.success is not None and champion.success >= target_success


def target_label(target: float | None, target_success: float | None) -> str:
    parts = [] if target is None else [f"{target:g}"]
    if target_success is not None:
        parts.append(f"success {100 * target_success:g} %")
    return " and ".join(parts)


def _reached_reason(champion: Champion, target: float | None, target_success: float | None) -> str:
    parts = [] if target is None else [f"holdout {champion.holdout:.2f} >= {target:g}"]
    if target_success is not None and champion.success is not None:
        parts.append(f"holdout success {100 * champion.success:.0f} % >= {100 * target_success:g} %")
    return "target reached: " + " and ".join(parts)


def has_budget(cfg: TrainConfig) -> bool:
    return any(v is not None for v in (cfg.max_iterations, cfg.max_env_steps, cfg.max_seconds, cfg.max_cost))


def check(
    cfg: TrainConfig,
    *,
    champion: Champion | None,
    target: float | None,
    iteration: int,
    env_steps: int,
    seconds: float,
    cost: float,
    population: int,
    idle_rounds: int,
    mid_iteration: bool = False,
    max_return: float | None = None,
    tunable: bool = True,
) -> Stop | None:
    # an explicit --target is the user's word, even past the best possible return
    if (
        cfg.target is None
        and champion is not None
        and max_return is not None
        and champion.holdout >= max_return
    ):
        return Stop("target", f"best possible return reached: holdout {champion.holdout:.2f}")
    budget = has_budget(cfg)
    target_stops = cfg.target is not None or cfg.target_success is not None or not budget
    if reached(champion, target, cfg.target_success) and target_stops and not (cfg.init and budget):
        assert champion is not None
        return Stop("target", _reached_reason(champion, target, cfg.target_success))
    if not mid_iteration and cfg.max_iterations is not None and iteration >= cfg.max_iterations:
        return Stop("budget", f"iteration budget reached ({cfg.max_iterations})")
    if cfg.max_env_steps is not None and env_steps >= cfg.max_env_steps:
        return Stop("budget", f"env-step budget reached ({cfg.max_env_steps:,})")
    if cfg.max_seconds is not None and seconds >= cfg.max_seconds:
        return Stop("budget", f"time budget reached ({cfg.max_seconds:g} s)")
    if cfg.max_cost is not None and cost >= cfg.max_cost:
        return Stop("budget", f"cost budget reached (${cfg.max_cost:g})")
    if not mid_iteration and cfg.stall_rounds and idle_rounds >= cfg.stall_rounds:
        return Stop("stalled", f"stalled: no improvement in the last {idle_rounds} rounds")
    if not mid_iteration and not tunable:
        return Stop("stalled", "first programs only (--no-evolution): no constants left to tune")
    if not mid_iteration and population == 0:
        return Stop("empty", "no valid program survived evaluation")
    return None


def verdict(
    stop: Stop,
    champion: Champion | None,
    target: float | None,
    idle_rounds: int,
    target_success: float | None = None,
) -> dict:
    """What the stop event records beside the reason: whether and why the run fell short."""
    out: dict = {"kind": stop.kind, "idle_rounds": idle_rounds}
    if champion is not None:
        gap, beyond = overfitting_gap(champion)
        out.update(training=champion.dev, holdout=champion.holdout, gap=gap, gap_beyond_ci=beyond)
        if champion.success is not None:
            out["success"] = champion.success
    given = target is not None or target_success is not None
    short = given and not reached(champion, target, target_success)
    if not short or stop.kind in ("target", "empty"):
        out["short_of_target"] = False
        return out
    out["short_of_target"] = True
    if out.get("gap_beyond_ci"):
        out["why"] = "overfitting: training-stream mean above holdout beyond the 95 % CI"
    elif stop.kind == "stalled" or idle_rounds >= STALL_VERDICT_ROUNDS:
        out["why"] = f"stalled: no improvement in the last {idle_rounds} rounds"
    else:
        out["why"] = "out of budget while still improving"
    return out


def describe(stop: Stop, info: dict, target: float | None, target_success: float | None = None) -> str:
    if not info.get("short_of_target"):
        return stop.reason
    return f"{stop.reason}; short of the target {target_label(target, target_success)}: {info['why']}"
