"""Confirming a counterexample: ask the real sandbox for the action at that observation.

The solver reasons over real numbers about a translation; the sandbox runs the actual
program on the actual float32 observation. A counterexample is reported only when the
sandbox's action violates the property too. This is the one place the prove package
talks to the sandbox (through the same asker ``verify`` uses), so a change to the
sandbox client is one edit here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scriptrl.glassbox.prove.translate import Translator
from scriptrl.glassbox.prove.values import Module, Unsupported, Vec, truth
from scriptrl.program import Program
from scriptrl.program.parsing import parse_python
from scriptrl.sandbox.actions import make_checker, observation_codec, plain_data


@dataclass
class Replay:
    observation: list
    action: Any  # as passed to env.step, in plain data; None when the program did not give one
    violates: bool | None  # None: the sandbox gave no valid action (the reason says why)
    reason: str | None = None
    seed: int | None = None


def property_holds(expr: str, obs: Any, action: Any) -> bool:
    """The property on concrete values, by the same translator with everything constant (not ``eval``)."""
    o = Vec([float(x) for x in np.asarray(obs).ravel()], "array") if np.ndim(obs) else float(np.asarray(obs))
    if isinstance(action, list):
        act: Any = Vec([float(x) for x in action], "array")
    else:
        act = action
    tr = Translator()
    env = {"obs": o, "action": act, "np": Module("numpy"), "numpy": Module("numpy"), "math": Module("math")}
    value = truth(tr.expr(parse_python(expr, mode="eval").body, env))
    if not isinstance(value, bool):
        raise Unsupported("the property did not reduce to True or False on concrete values")
    return value


def replay(
    program: Program,
    renv: Any,
    expr: str,
    candidates: list[dict],
    *,
    unsafe: bool = False,
    time_limit: float = 1.0,
) -> list[Replay]:
    """Each candidate through the sandbox, stopping at the first whose action violates the property."""
    from scriptrl.glassbox.verify.asker import _Asker
    from scriptrl.sandbox.client import WorkerFailure

    probe = renv.make()
    obs_space, act_space = probe.observation_space, probe.action_space
    probe.close()
    codec = observation_codec(obs_space)
    check = make_checker(act_space)
    out: list[Replay] = []
    by_seed: dict[int, list[dict]] = {}
    for c in candidates:
        by_seed.setdefault(int(c.get("seed") or 0), []).append(c)
    for seed, group in by_seed.items():
        asker = _Asker(program, codec, seed, unsafe, time_limit)
        try:
            for c in group:
                obs = _observation(obs_space, c["obs"])
                try:
                    actions, _ = asker.ask([obs])
                except WorkerFailure as e:
                    out.append(
                        Replay(plain_data(obs), None, None, f"the sandbox worker failed: {e.reason}", seed)
                    )
                    continue
                act, reason = check(actions[0])
                if reason is not None:
                    if isinstance(actions[0], dict) and actions[0].get("t") == "err":
                        reason = f"exception: {actions[0].get('m')}"
                    out.append(Replay(plain_data(obs), None, None, reason, seed))
                    continue
                act = plain_data(act)
                out.append(Replay(plain_data(obs), act, not property_holds(expr, obs, act), None, seed))
                if out[-1].violates:
                    return out
        finally:
            asker.close()
    return out


def _observation(space: Any, values: list) -> Any:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return int(round(values[0]))
    arr = np.asarray(values, dtype=np.float64)
    if np.dtype(space.dtype).kind in "iu":
        arr = np.round(arr)
    return arr.astype(space.dtype)
