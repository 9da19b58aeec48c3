"""The physical limit of a tabular environment: value iteration on its true model (env.unwrapped.P).

No learner can beat the optimal policy in expectation, so this is the ceiling every score
in the suite is read against, and it tells a missed goal caused by the learner from one
caused by the environment (a goal set above the optimum, or a holdout sample that is
unlucky for any policy). Two ceilings, because the environments have a time limit:

* the best *stationary* policy (``policy(obs)``, what a stateless program can express),
  found by discounted value iteration over several discounts and kept by its exact
  finite-horizon value;
* the best policy that may also use the step count (finite-horizon value iteration), a
  ``class Policy`` that counts steps; its expected return is the true optimum.

Both are written as policy programs and scored by scriptrl's evaluator on the holdout and
audit splits, like everything else in the suite.

    python benchmarks/value_iteration.py FrozenLake8x8-v1 Taxi-v4
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def tabular_model(env_id: str):
    """(P as arrays, initial-state distribution, time limit) from the resolved environment."""
    from scriptrl.envs import resolve_env

    renv = resolve_env(env_id)
    env = renv.make()
    try:
        base = env.unwrapped
        n_s, n_a = base.observation_space.n, base.action_space.n
        trans = np.zeros((n_s, n_a, n_s))
        reward = np.zeros((n_s, n_a))  # expected immediate reward
        term = np.zeros((n_s, n_a, n_s))  # probability mass that ends the episode there
        for s in range(n_s):
            for a in range(n_a):
                for p, s2, r, done in base.P[s][a]:
                    reward[s, a] += p * r
                    if done:
                        term[s, a, s2] += p
                    else:
                        trans[s, a, s2] += p
        isd = np.asarray(
            base.initial_state_distrib if hasattr(base, "initial_state_distrib") else base.isd, dtype=float
        )
        horizon = renv.max_episode_steps or env.spec.max_episode_steps
        return renv, trans, reward, isd, int(horizon)
    finally:
        env.close()


def finite_horizon(trans, reward, horizon: int):
    """Optimal values and actions for each number of steps left (index 1..horizon)."""
    n_s, n_a, _ = trans.shape
    v = np.zeros(n_s)
    actions = np.zeros((horizon + 1, n_s), dtype=int)
    values = [v]
    for k in range(1, horizon + 1):
        q = reward + trans @ v
        actions[k] = np.argmax(q, axis=1)
        v = q.max(axis=1)
        values.append(v)
    return values, actions


def evaluate_stationary(trans, reward, pi, horizon: int) -> np.ndarray:
    """Exact expected return of a stationary policy within the time limit, for every start state."""
    n_s = trans.shape[0]
    idx = np.arange(n_s)
    p_pi, r_pi = trans[idx, pi], reward[idx, pi]
    v = np.zeros(n_s)
    for _ in range(horizon):
        v = r_pi + p_pi @ v
    return v


def best_stationary(trans, reward, isd, horizon: int):
    best = None
    for gamma in (0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1.0):
        v = np.zeros(trans.shape[0])
        for _ in range(20000):
            q = reward + gamma * (trans @ v)
            v2 = q.max(axis=1)
            if np.max(np.abs(v2 - v)) < 1e-12:
                break
            v = v2
        pi = np.argmax(reward + gamma * (trans @ v), axis=1)
        value = float(isd @ evaluate_stationary(trans, reward, pi, horizon))
        if best is None or value > best[1] + 1e-12:
            best = (pi, value, gamma)
    return best


def stationary_source(env_id: str, pi, value: float, gamma: float) -> str:
    return (
        f'"""Best stationary policy for {env_id} by value iteration on the true model (discount {gamma:g}),\n'
        f'kept for its exact expected return within the time limit: {value:.4f}."""\n\n'
        f"ACTIONS = {[int(a) for a in pi]!r}\n\n\n"
        "def policy(obs):\n    return ACTIONS[obs]\n"
    )


def time_aware_source(env_id: str, actions, value: float, horizon: int) -> str:
    rows = ["".join(str(int(a)) for a in actions[k]) for k in range(1, horizon + 1)]
    return (
        f'"""Optimal policy for {env_id} given the step count: finite-horizon value iteration on the\n'
        f'true model over its {horizon}-step limit; expected return {value:.4f} (the true optimum)."""\n\n'
        f"# row k-1: the action in each state with k steps left\nPLAN = {rows!r}\n\n\n"
        "class Policy:\n"
        "    def reset(self, seed):\n        self.t = 0\n\n"
        "    def act(self, obs):\n"
        f"        left = max(1, {horizon} - self.t)\n"
        "        self.t += 1\n"
        "        return int(PLAN[left - 1][obs])\n"
    )


def physical_limit(env_id: str, evaluate_splits: bool = True) -> dict:
    """Ceilings of ``env_id`` (expected values) and their holdout/audit scores through the evaluator."""
    renv, trans, reward, isd, horizon = tabular_model(env_id)
    values, actions = finite_horizon(trans, reward, horizon)
    optimum = float(isd @ values[horizon])
    pi, stat_value, gamma = best_stationary(trans, reward, isd, horizon)
    out = {
        "env": renv.id,
        "horizon": horizon,
        "optimum": optimum,
        "stationary": stat_value,
        "gamma": gamma,
        "sources": {
            "stationary": stationary_source(renv.id, pi, stat_value, gamma),
            "time_aware": time_aware_source(renv.id, actions, optimum, horizon),
        },
    }
    if evaluate_splits:
        from scriptrl.evaluate import SeedSplits, evaluate

        splits = SeedSplits()
        for kind, source in out["sources"].items():
            for split in ("holdout", "audit"):
                res = evaluate(source, renv, splits.seeds(split), split=split)
                if res.failures:
                    raise RuntimeError(f"{kind} policy failed on {split}: {res.failures[0]['reason']}")
                out[f"{kind}_{split}"] = res.mean
                out[f"{kind}_{split}_ci"] = (res.ci95[1] - res.ci95[0]) / 2
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("envs", nargs="*", default=["FrozenLake8x8-v1", "Taxi-v4"])
    args = ap.parse_args(argv)
    for env_id in args.envs:
        r = physical_limit(env_id)
        sys.stdout.write(
            f"{r['env']}: optimum {r['optimum']:.4f} (holdout {r['time_aware_holdout']:.3f}, audit "
            f"{r['time_aware_audit']:.3f}); best stationary {r['stationary']:.4f} (holdout "
            f"{r['stationary_holdout']:.3f}, audit {r['stationary_audit']:.3f})\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
