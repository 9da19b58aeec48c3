"""Two small control tasks scriptrl has never seen, against the first rule a person writes.

Issue 13 asks that a custom ``module:Class`` environment be learned at least as well as the
simplest sensible rule for it. These two tasks are written for that test and are not described
anywhere in the package (scriptrl sees only their spaces):

* ``custom_tasks:ThermalRoom`` (4 observations, 3 discrete actions, 200 steps): keep a room at
  its setpoint with a heater whose element heats and cools with a lag, so the bang-bang rule
  ("full power while too cold") overshoots and a rule that anticipates does better.
* ``custom_tasks:Docking`` (3 observations, one continuous action in [-1, 1], 200 steps): bring a
  drifting cart to rest at the dock; the bang-bang rule ("push towards the dock") oscillates.

Usage: python benchmarks/custom_tasks.py [--seconds 240] [--seeds 0,1,2] [--out FILE.json]
Prints a table (holdout 1000-1049 of the hand rule and of each search seed's champion) and
writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import gymnasium
import numpy as np
from gymnasium import spaces

HERE = Path(__file__).resolve().parent


class ThermalRoom(gymnasium.Env):
    """Observation: [temperature error (room - setpoint), its change over the last step, heater
    element level 0..1, outside temperature minus setpoint]. Actions: 0 off, 1 half, 2 full power.
    Reward: minus the absolute temperature error, each step."""

    metadata = {"render_modes": []}
    max_episode_steps = 200
    reward_threshold = None

    def __init__(self, render_mode: str | None = None):
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-50.0, 50.0, shape=(4,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.error = self.heater = self.outside = self.change = 0.0
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.error, self.change, self.heater, self.outside], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.error = float(self.np_random.uniform(-8.0, 2.0))
        self.outside = float(self.np_random.uniform(-15.0, -3.0))
        self.heater = float(self.np_random.uniform(0.0, 0.3))
        self.change, self.t = 0.0, 0
        return self._obs(), {}

    def step(self, action):
        power = (0.0, 0.5, 1.0)[int(action)]
        self.heater += 0.15 * (power - self.heater)  # the element lags the switch
        before = self.error
        loss = 0.02 * (self.error - self.outside)  # heat lost to the outside
        self.error += 0.9 * self.heater - loss + float(self.np_random.normal(0.0, 0.05))
        self.change = self.error - before
        self.t += 1
        return self._obs(), -abs(self.error), False, self.t >= self.max_episode_steps, {}


class Docking(gymnasium.Env):
    """Observation: [distance to the dock, velocity, current drift force]. Action: thrust in
    [-1, 1]. Reward: minus the distance, minus a little for thrust, each step."""

    metadata = {"render_modes": []}
    max_episode_steps = 200
    reward_threshold = None

    def __init__(self, render_mode: str | None = None):
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-20.0, 20.0, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.x = self.v = self.drift = 0.0
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.v, self.drift], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-6.0, 6.0))
        self.v = float(self.np_random.uniform(-0.5, 0.5))
        self.drift = float(self.np_random.uniform(-0.2, 0.2))
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        a = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        self.drift = float(np.clip(self.drift + self.np_random.normal(0.0, 0.01), -0.3, 0.3))
        self.v = 0.98 * self.v + 0.1 * (a + self.drift)
        self.x += 0.1 * self.v
        self.t += 1
        return self._obs(), -abs(self.x) - 0.05 * a * a, False, self.t >= self.max_episode_steps, {}


#: The first rule a person writes for each task (bang-bang on the sign of the error).
HAND_RULES = {
    "ThermalRoom": "def policy(obs):\n    return 2 if obs[0] < 0 else 0\n",
    "Docking": "def policy(obs):\n    return [-1.0] if obs[0] > 0 else [1.0]\n",
}


def _holdout(env_id: str, source: str) -> float:
    from scriptrl.evaluate import evaluate
    from scriptrl.seeds import SeedSplits

    return evaluate(source, env_id, SeedSplits().seeds("holdout"), split="holdout").mean


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=240.0, help="search wall seconds per run")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--tasks", default="ThermalRoom,Docking")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "custom_tasks.json")
    args = ap.parse_args(argv)
    # worker processes import the task module by name, so it must be on their path too
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    sys.path.insert(0, str(HERE))
    import scriptrl

    rows = []
    load = os.getloadavg()[0]
    for task in args.tasks.split(","):
        env_id = f"custom_tasks:{task}"
        rule = _holdout(env_id, HAND_RULES[task])
        runs = []
        for seed in (int(s) for s in args.seeds.split(",")):
            started = time.monotonic()
            with tempfile.TemporaryDirectory() as tmp:
                res = scriptrl.train(
                    env_id, run_dir=str(Path(tmp) / "run"), max_seconds=args.seconds, seed=seed
                )
            runs.append(
                {
                    "seed": seed,
                    "holdout": res.best_holdout,
                    "env_steps": res.env_steps,
                    "seconds": time.monotonic() - started,
                    "lines": len(res.best_source.splitlines()),
                }
            )
        med = statistics.median(r["holdout"] for r in runs)
        rows.append(
            {"task": task, "hand_rule": rule, "search_median": med, "beats_rule": med >= rule, "runs": runs}
        )
    print(f"load {load:.1f}; {args.seconds:g} s per search; holdout 1000-1049")
    print("| task | hand rule | search median | runs (holdout) | at least the rule |\n|---|---|---|---|---|")
    for r in rows:
        each = ", ".join(f"s{x['seed']} {x['holdout']:.1f}" for x in r["runs"])
        print(
            f"| {r['task']} | {r['hand_rule']:.1f} | {r['search_median']:.1f} | {each} | {r['beats_rule']} |"
        )
    args.out.write_text(json.dumps({"load": load, "seconds": args.seconds, "rows": rows}, indent=1))
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
