"""The solved threshold is a default target: with a budget the search uses it, as PPO uses its
timesteps; an explicit --target, no budget at all, or the best possible return stop it early."""

from __future__ import annotations

from scriptrl.envs import resolve_env
from scriptrl.search import stopping
from scriptrl.search.champion import Champion
from scriptrl.search.config import TrainConfig


def _check(cfg: TrainConfig, holdout: float, max_return: float | None = None) -> stopping.Stop | None:
    champ = Champion(
        1, dev=holdout, holdout=holdout, ci95=[holdout - 1, holdout + 1], episodes=50, var_mean=1.0
    )
    return stopping.check(
        cfg,
        champion=champ,
        target=cfg.target if cfg.target is not None else 200.0,
        iteration=3,
        env_steps=1000,
        seconds=5.0,
        cost=0.0,
        population=4,
        idle_rounds=0,
        max_return=max_return,
    )


def test_default_threshold_does_not_end_a_budgeted_search():
    assert _check(TrainConfig(env="LunarLander-v3", max_seconds=300), holdout=230.0) is None


def test_default_threshold_ends_a_search_without_budget():
    stop = _check(TrainConfig(env="LunarLander-v3"), holdout=230.0)
    assert stop is not None and stop.kind == "target"


def test_explicit_target_ends_a_budgeted_search():
    stop = _check(TrainConfig(env="LunarLander-v3", max_seconds=300, target=220.0), holdout=230.0)
    assert stop is not None and stop.kind == "target" and "220" in stop.reason


def test_best_possible_return_ends_a_budgeted_search_even_with_init():
    cfg = TrainConfig(env="CartPole-v1", max_seconds=300, init="mine.py")
    stop = _check(cfg, holdout=500.0, max_return=500.0)
    assert stop is not None and "best possible" in stop.reason
    assert _check(cfg, holdout=499.0, max_return=500.0) is None


def test_an_explicit_target_past_the_best_possible_return_is_the_users_word():
    """Tests and users write --target 10000 to mean "run until a budget ends"."""
    cfg = TrainConfig(env="CartPole-v1", max_iterations=5, target=10_000.0)
    assert _check(cfg, holdout=500.0, max_return=500.0) is None


def test_descriptions_carry_the_best_possible_return():
    assert resolve_env("CartPole-v1").max_return == 500.0
    assert resolve_env("LunarLander-v3").max_return is None
