"""Property-based checks: valid action, no exception, determinism and a time bound, each with hypothesis."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from scriptrl.envs import ResolvedEnv
from scriptrl.errors import UserError
from scriptrl.glassbox.verify.asker import _Asker, _show
from scriptrl.glassbox.verify.perturb import _random_rollouts
from scriptrl.glassbox.verify.results import Budget, Check
from scriptrl.program import Program
from scriptrl.sandbox.actions import Checker, make_checker, observation_codec
from scriptrl.sandbox.client import WorkerFailure


def observation_bounds(space: spaces.Box, seen: list, margin: float = 0.25) -> list[dict]:
    """Per component: the space's bound where finite, else the rollout range widened by ``margin``."""
    low = np.asarray(space.low, dtype=np.float64).ravel()
    high = np.asarray(space.high, dtype=np.float64).ravel()
    arr = np.asarray(seen, dtype=np.float64).reshape(len(seen), -1) if seen else np.zeros((0, low.size))
    out = []
    for i in range(low.size):
        lo, hi, source = low[i], high[i], "space"
        if not (math.isfinite(lo) and math.isfinite(hi)):
            if arr.shape[0]:
                s_lo, s_hi = float(arr[:, i].min()), float(arr[:, i].max())
            else:
                s_lo, s_hi = -1.0, 1.0
            pad = margin * max(s_hi - s_lo, 1e-3)
            lo = lo if math.isfinite(lo) else s_lo - pad
            hi = hi if math.isfinite(hi) else s_hi + pad
            source = "rollouts"
        out.append({"component": i, "low": float(lo), "high": float(hi), "from": source})
    return out


def _box_strategy(space: spaces.Box, bounds: list[dict]):
    from hypothesis import strategies as st

    shape = space.shape
    kind = np.dtype(space.dtype).kind
    if len(bounds) > 64:  # images and other large arrays: draw a seed, fill it with numpy
        lows = np.array([b["low"] for b in bounds])
        highs = np.array([b["high"] for b in bounds])

        def fill(args: tuple[int, int]) -> np.ndarray:
            s, mode = args
            rng = np.random.default_rng(s)
            if mode == 0:
                v = rng.uniform(lows, highs)
            else:
                v = np.where(rng.random(lows.size) < 0.5, lows, highs)
            return (np.round(v) if kind in "iu" else v).astype(space.dtype).reshape(shape)

        return st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 1)).map(fill)
    parts = []
    for b in bounds:
        lo, hi = b["low"], b["high"]
        if kind in "iu":
            inner: Any = st.integers(int(math.ceil(lo)), int(math.floor(hi)))
            ends = st.sampled_from([int(math.ceil(lo)), int(math.floor(hi))])
        else:
            width: Literal[32, 64] = 32 if np.dtype(space.dtype).itemsize <= 4 else 64
            lo32, hi32 = float(np.float32(lo)), float(np.float32(hi))
            lo_w = (
                lo32 if lo32 >= lo or width == 64 else float(np.nextafter(np.float32(lo), np.float32(np.inf)))
            )
            hi_w = (
                hi32
                if hi32 <= hi or width == 64
                else float(np.nextafter(np.float32(hi), np.float32(-np.inf)))
            )
            if width == 64:
                lo_w, hi_w = lo, hi
            inner = st.floats(lo_w, hi_w, allow_nan=False, allow_infinity=False, width=width)
            ends = st.sampled_from([lo_w, hi_w])
        parts.append(st.one_of(ends, inner))  # corners of the space come up often, on purpose
    return st.tuples(*parts).map(lambda t: np.asarray(t, dtype=space.dtype).reshape(shape))


def observation_strategy(space: spaces.Space, bounds: list[dict] | None):
    """A hypothesis strategy for one observation of ``space``."""
    from hypothesis import strategies as st

    if isinstance(space, spaces.Box):
        return _box_strategy(space, bounds or observation_bounds(space, []))
    if isinstance(space, spaces.Discrete):
        return st.integers(int(space.start), int(space.start + space.n - 1))
    if isinstance(space, spaces.Tuple):
        return st.tuples(*(observation_strategy(s, None) for s in space.spaces))
    if isinstance(space, spaces.MultiBinary):
        return st.lists(
            st.integers(0, 1), min_size=int(np.prod(space.shape)), max_size=int(np.prod(space.shape))
        ).map(lambda v: np.asarray(v, dtype=space.dtype).reshape(space.shape))
    if isinstance(space, spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec).ravel()
        return st.tuples(*(st.integers(0, int(n) - 1) for n in nvec)).map(
            lambda t: np.asarray(t, dtype=space.dtype).reshape(space.shape)
        )

    def sample(s: int) -> Any:
        space.seed(s)
        return space.sample()

    return st.integers(0, 2**31 - 1).map(sample)


class _Stop(Exception):
    """A batch property stops early: its worker did not answer in time (the time-bound check's finding)."""


def _run_property(
    name: str,
    batch_strategy,
    check_batch: Callable[[list], tuple[str, Any] | None],
    examples: int,
    seed: int,
    deadline: float | None = None,
) -> Check:
    """Run one property under hypothesis until ``deadline``; the last failure recorded is the shrunk one.

    Past the deadline every remaining example passes without asking the worker, so
    hypothesis winds down at once, keeping the smallest failure it had found.
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hseed

    failures: list[tuple[str, Any]] = []
    count = [0]
    stopped: list[str] = []

    @hseed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        verbosity=Verbosity.quiet,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(batch_strategy)
    def prop(batch: list) -> None:
        if stopped or (deadline is not None and time.monotonic() > deadline):
            stopped[:] = stopped or ["its share of verify's time limit ran out"]
            return
        count[0] += 1
        try:
            problem = check_batch(batch)
        except _Stop as e:
            stopped.append(str(e))
            return
        if problem is not None:
            failures.append(problem)
            raise AssertionError(problem[0])

    try:
        prop()
    except UserError:  # the program cannot be loaded at all: that is the answer, not a counterexample
        raise
    except Exception:  # AssertionError, or hypothesis' Flaky when a timing failure does not repeat
        if not failures:
            raise
    if failures:
        detail, counterexample = failures[-1]
        return Check(name, False, detail, counterexample, examples=count[0])
    if stopped:
        return Check(
            name,
            None,
            f"not finished: {stopped[0]}, after {count[0]} of {examples} batches",
            examples=count[0],
            finished=False,
        )
    return Check(name, True, f"held for {count[0]} batches of observations", examples=count[0])


def _own_observations(
    program: Program, renv: ResolvedEnv, seeds: list[int], unsafe: bool, deadline: float
) -> list:
    """What the program's own episodes visit (for unbounded components), cut off at ``deadline``."""
    from scriptrl.glassbox.trace import run_episodes

    own: list = []

    def keep(step, env) -> None:
        own.append(step.obs)
        if time.monotonic() > deadline:
            raise _Stop("rollouts out of time")

    try:
        run_episodes(program, renv, seeds, unsafe=unsafe, on_step=keep)
    except (UserError, _Stop):
        pass  # a policy that cannot even load fails the properties below, with the reason
    return own


def _bounds(
    program: Program, renv: ResolvedEnv, space: Any, seeds: list[int], unsafe: bool, deadline: float
) -> list:
    """Where to draw observations: the space's bounds, widened rollout ranges where it is unbounded."""
    if not isinstance(space, spaces.Box):
        return []
    seen, _ = _random_rollouts(renv, seeds)
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        seen = seen + _own_observations(program, renv, seeds, unsafe, deadline)
    return observation_bounds(space, seen)


def _fast_check(asker: _Asker, time_limit: float) -> Callable[[list], tuple[str, Any] | None]:
    """The time bound: one observation per message, so a slow input is timed alone, not averaged away."""

    def fast(b: list) -> tuple[str, Any] | None:
        for o in b:
            try:
                _, seconds = asker.ask([o])
                if seconds > time_limit:  # timing varies: confirm before calling it a failure
                    seconds = min(seconds, asker.ask([o])[1])
            except WorkerFailure as e:
                if "timeout" not in e.reason:
                    continue  # a crash is the exception property's finding
                return f"no answer in time for observation {_show(o)}: {e.reason}", {"observation": _show(o)}
            if seconds > time_limit:
                limit = f"limit {1000 * time_limit:g} ms"
                return (
                    f"{1000 * seconds:.1f} ms per call ({limit}) for observation {_show(o)}",
                    {"observation": _show(o), "ms_per_call": round(1000 * seconds, 2)},
                )
        return None

    return fast


class _BatchProperties:
    """The three properties judged on batches of observations; each returns a finding or None."""

    def __init__(self, asker: _Asker, check: Checker) -> None:
        self.asker, self.check = asker, check

    def ask(self, b: list) -> list:
        """Actions for ``b``; a batch that times out stops its property (slowness is the time check's)."""
        try:
            return self.asker.ask(b)[0]
        except WorkerFailure as e:
            if "timeout" in e.reason:
                raise _Stop(f"a batch of {len(b)} got no answer in time ({e.reason.split(';')[0]})") from None
            raise

    def valid(self, b: list) -> tuple[str, Any] | None:
        try:
            actions = self.ask(b)
        except WorkerFailure:
            return None  # a crash is the next property's finding
        for o, a in zip(b, actions, strict=True):
            if isinstance(a, dict) and a.get("t") == "err":
                continue
            _, reason = self.check(a)
            if reason is not None:
                return f"{reason} for observation {_show(o)}", {"observation": _show(o), "action": a}
        return None

    def no_exception(self, b: list) -> tuple[str, Any] | None:
        try:
            actions = self.ask(b)
        except WorkerFailure as e:
            if len(b) == 1:
                return f"the worker died on observation {_show(b[0])}: {e.reason}", {
                    "observation": _show(b[0])
                }
            return f"the worker died on a batch of {len(b)}: {e.reason}", {"observations": _show(b)}
        for o, a in zip(b, actions, strict=True):
            if isinstance(a, dict) and a.get("t") == "err":
                return f"{a.get('m')} for observation {_show(o)}", {
                    "observation": _show(o),
                    "error": a.get("m"),
                }
        return None

    def deterministic(self, b: list) -> tuple[str, Any] | None:
        try:
            actions = self.ask(list(b) + list(b))
        except WorkerFailure:
            return None
        n = len(b)
        for o, a1, a2 in zip(b, actions[:n], actions[n:], strict=True):
            if json.dumps(a1, sort_keys=True) != json.dumps(a2, sort_keys=True):
                return (
                    f"observation {_show(o)} gave {a1!r} and then {a2!r}",
                    {"observation": _show(o), "actions": [a1, a2]},
                )
        return None


def property_checks(
    program: Program,
    renv: ResolvedEnv,
    *,
    seed: int = 0,
    examples: int = 60,
    batch: int = 32,
    time_limit: float = 0.02,
    unsafe: bool = False,
    rollout_seeds: Sequence[int] = range(3),
    budget: Budget | None = None,
) -> tuple[list[Check], list[dict], dict]:
    """The four properties, each with its own hypothesis run, counterexample and share of ``budget``."""
    from hypothesis import strategies as st

    budget = budget or Budget()
    probe = renv.make()
    obs_space, act_space = probe.observation_space, probe.action_space
    probe.close()
    codec = observation_codec(obs_space)
    check = make_checker(act_space)
    bounds = _bounds(program, renv, obs_space, list(rollout_seeds), unsafe, budget.share(5))
    one = observation_strategy(obs_space, bounds)
    batches = st.lists(one, min_size=1, max_size=batch)
    asker = _Asker(program, codec, seed, unsafe, time_limit)
    asker._ensure()  # a program that cannot load fails here, in one line, before any property runs

    props = _BatchProperties(asker, check)
    checks = []
    properties = (
        ("valid action", props.valid),
        ("no exception", props.no_exception),
        ("same observation, same action", props.deterministic),
        (f"under {1000 * time_limit:g} ms per call", _fast_check(asker, time_limit)),
    )
    try:
        for i, (name, fn) in enumerate(properties):
            checks.append(_run_property(name, batches, fn, examples, seed, budget.share(len(properties) - i)))
    finally:
        asker.close()
    return checks, bounds, asker.isolation
