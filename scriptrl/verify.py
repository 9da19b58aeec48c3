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

import dataclasses
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from scriptrl import seeds
from scriptrl.actions import encode_observations, make_checker, observation_codec
from scriptrl.envs import ResolvedEnv, resolve_env
from scriptrl.errors import UserError
from scriptrl.program import Program
from scriptrl.sandbox.client import WorkerFailure

#: Physical parameters worth perturbing, per environment: (name, make kwargs, attributes of env.unwrapped).
#: Magnitudes are what a controller for the real system should tolerate (tens of percent).
PHYSICS: dict[str, list[tuple[str, dict, dict]]] = {
    "CartPole-v1": [
        ("pole length x0.5", {}, {"length": 0.25}),
        ("pole length x2", {}, {"length": 1.0}),
        ("pole mass x2", {}, {"masspole": 0.2}),
        ("cart mass x1.5", {}, {"masscart": 1.5}),
    ],
    "Acrobot-v1": [
        ("link 1 mass x1.2", {}, {"LINK_MASS_1": 1.2}),
        ("link 2 length x1.2", {}, {"LINK_LENGTH_2": 1.2}),
    ],
    "MountainCar-v0": [("engine force x0.9", {}, {"force": 0.0009}), ("gravity x1.05", {}, {"gravity": 0.002625})],
    "MountainCarContinuous-v0": [("engine power x0.9", {}, {"power": 0.00135})],
    "Pendulum-v1": [("gravity 12", {"g": 12.0}, {}), ("mass x1.1", {}, {"m": 1.1}), ("length x1.1", {}, {"l": 1.1})],
    "LunarLander-v3": [
        ("gravity -8", {"gravity": -8.0}, {}),
        ("gravity -11.5", {"gravity": -11.5}, {}),
        ("wind 5 (turbulence 0.5)", {"enable_wind": True, "wind_power": 5.0, "turbulence_power": 0.5}, {}),
    ],
}
PHYSICS["LunarLanderContinuous-v3"] = PHYSICS["LunarLander-v3"]

NOISE_LEVELS = (0.02, 0.05, 0.1)
HOLDOUT_START = seeds.HOLDOUT[0]


# --------------------------------------------------------------------------- perturbed environments


class NoisyObservation(gymnasium.ObservationWrapper):
    """Gaussian noise per component, seeded from the episode seed so a result can be reproduced."""

    def __init__(self, env: gymnasium.Env, sigma: Sequence[float]) -> None:
        super().__init__(env)
        self.sigma = np.asarray(sigma, dtype=np.float64)
        space = env.observation_space
        self.low = np.where(np.isfinite(space.low), space.low, -np.inf).astype(np.float64)
        self.high = np.where(np.isfinite(space.high), space.high, np.inf).astype(np.float64)
        self.rng = np.random.default_rng(0)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng([int(seed), 7919])
        return super().reset(seed=seed, options=options)

    def observation(self, observation):
        noisy = np.asarray(observation, dtype=np.float64) + self.rng.normal(0.0, 1.0, self.sigma.shape) * self.sigma
        return np.clip(noisy, self.low, self.high).astype(self.observation_space.dtype)


@dataclasses.dataclass(frozen=True)
class PerturbedEnv(ResolvedEnv):
    """A resolved environment whose ``make()`` adds noise, a longer horizon or changed physics.

    ``scriptrl.evaluate`` only calls ``make()`` and reads plain fields, so the evaluator,
    its sandbox and its statistics are used unchanged.
    """

    condition: str = "clean"
    noise: tuple[float, ...] = ()
    attrs: tuple[tuple[str, float], ...] = ()
    extra_kwargs: tuple[tuple[str, Any], ...] = ()
    horizon: int | None = None

    @classmethod
    def of(cls, renv: ResolvedEnv, **changes: Any) -> PerturbedEnv:
        base = {f.name: getattr(renv, f.name) for f in dataclasses.fields(ResolvedEnv)}
        return cls(**base, **changes)

    def label(self) -> str:
        return f"{super().label()} [{self.condition}]"

    def make(self, **extra: Any) -> gymnasium.Env:
        kwargs = {**dict(self.extra_kwargs), **extra}
        if self.horizon:
            kwargs["max_episode_steps"] = self.horizon
        env = super().make(**kwargs)
        u = env.unwrapped
        for name, value in self.attrs:
            if not hasattr(u, name):
                raise UserError(f"{self.id} has no physical parameter {name!r} to perturb")
            setattr(u, name, value)
        if self.attrs and hasattr(u, "polemass_length"):  # CartPole caches these in __init__
            u.total_mass = u.masspole + u.masscart
            u.polemass_length = u.masspole * u.length
        if self.noise:
            env = NoisyObservation(env, self.noise)
        return env


# --------------------------------------------------------------------------- results


@dataclasses.dataclass
class Check:
    name: str
    passed: bool | None  # None: not applicable
    detail: str
    counterexample: Any = None
    examples: int = 0


@dataclasses.dataclass
class Robustness:
    condition: str
    mean: float | None
    ci95: tuple[float, float] | None
    random: float | None
    retention: float | None
    passed: bool | None
    detail: str = ""


@dataclasses.dataclass
class VerifyReport:
    env_label: str
    program: str
    checks: list[Check]
    robustness: list[Robustness]
    bounds: list[dict]
    isolation: dict[str, str]
    min_retention: float

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks) and all(r.passed is not False for r in self.robustness)

    def failures(self) -> list[str]:
        out = [f"{c.name}: {c.detail}" for c in self.checks if c.passed is False]
        return out + [f"robustness [{r.condition}]: {r.detail}" for r in self.robustness if r.passed is False]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["passed"] = self.passed
        return d


# --------------------------------------------------------------------------- observation bounds


def _random_rollouts(renv: ResolvedEnv, seeds: Sequence[int], max_steps: int = 1000) -> tuple[list, list[list[float]]]:
    """Observations and per-step rewards of a uniformly random policy: trusted code only."""
    env = renv.make()
    observations, rewards = [], []
    try:
        env.action_space.seed(int(seeds[0]) if seeds else 0)
        for s in seeds:
            o, _ = env.reset(seed=int(s))
            observations.append(o)
            rs: list[float] = []
            for _ in range(max_steps):
                o, r, term, trunc, _ = env.step(env.action_space.sample())
                observations.append(o)
                rs.append(float(r))
                if term or trunc:
                    break
            rewards.append(rs)
    finally:
        env.close()
    return observations, rewards


def observation_bounds(space: spaces.Box, seen: list, margin: float = 0.25) -> list[dict]:
    """Per component: the space's bound where finite, else the range seen in rollouts widened by ``margin``."""
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
            inner = st.integers(int(math.ceil(lo)), int(math.floor(hi)))
            ends = st.sampled_from([int(math.ceil(lo)), int(math.floor(hi))])
        else:
            width = 32 if np.dtype(space.dtype).itemsize <= 4 else 64
            lo32, hi32 = float(np.float32(lo)), float(np.float32(hi))
            lo_w = lo32 if lo32 >= lo or width == 64 else float(np.nextafter(np.float32(lo), np.float32(np.inf)))
            hi_w = hi32 if hi32 <= hi or width == 64 else float(np.nextafter(np.float32(hi), np.float32(-np.inf)))
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
        return st.lists(st.integers(0, 1), min_size=int(np.prod(space.shape)), max_size=int(np.prod(space.shape))).map(
            lambda v: np.asarray(v, dtype=space.dtype).reshape(space.shape))  # fmt: skip
    if isinstance(space, spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec).ravel()
        return st.tuples(*(st.integers(0, int(n) - 1) for n in nvec)).map(
            lambda t: np.asarray(t, dtype=space.dtype).reshape(space.shape))  # fmt: skip

    def sample(s: int) -> Any:
        space.seed(s)
        return space.sample()

    return st.integers(0, 2**31 - 1).map(sample)


# --------------------------------------------------------------------------- property checks


def _show(obs: Any) -> Any:
    """Plain values; a float32 prints as its shortest form (4.8, not 4.800000190734863), which round-trips."""
    if isinstance(obs, np.ndarray):
        return [float(str(v)) if obs.dtype.kind == "f" else int(v) for v in obs.ravel()]
    if isinstance(obs, tuple | list):
        return [_show(o) for o in obs]
    if isinstance(obs, np.generic):
        return obs.item()
    return obs


class _Asker:
    """A sandboxed worker holding the program; restarted when a fault kills it."""

    def __init__(self, program: Program, codec: dict, seed: int, unsafe: bool, time_limit: float) -> None:
        self.program, self.codec, self.seed, self.unsafe = program, codec, seed, unsafe
        self.time_limit = time_limit
        self.worker = None
        self.isolation: dict[str, str] = {}
        self.stateful = program.entry_kind == "class"
        self.next_id = 0
        self.live_ids: list[int] = []

    def _ensure(self):
        from scriptrl.trace import open_worker

        if self.worker is None or (getattr(self.worker, "proc", True) is None):
            self.worker = open_worker(self.program, self.codec, self.seed, unsafe=self.unsafe)
            self.isolation = dict(self.worker.isolation)
            self.live_ids = []
        return self.worker

    def ask(self, observations: list) -> tuple[list, float]:
        """Actions (as the worker encoded them) for ``observations``, and seconds per call."""
        worker = self._ensure()
        n = len(observations)
        obs_header, payload = encode_observations(self.codec, observations)
        ids = list(range(self.next_id, self.next_id + n))
        self.next_id += n
        header: dict[str, Any] = {"op": "act", "ids": ids}
        if obs_header is not None:
            header["obs"] = obs_header
        if self.stateful:  # a fresh instance per observation, all reset with the same seed
            header["new"] = [[i, self.seed] for i in ids]
            header["end"], self.live_ids = self.live_ids, ids
        started = time.perf_counter()
        try:
            worker.send(header, payload)
            reply = worker.recv(max(2.0, 4 * self.time_limit * n + 1.0))
        except WorkerFailure:
            self.worker = None
            raise
        seconds = time.perf_counter() - started
        actions = reply.get("a")
        if not isinstance(actions, list) or len(actions) != n:
            worker.kill()
            self.worker = None
            raise WorkerFailure("protocol: the worker's reply does not hold one action per observation")
        return actions, seconds / n

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None


def _run_property(name: str, batch_strategy, check_batch: Callable[[list], tuple[str, Any] | None],
                  examples: int, seed: int) -> Check:  # fmt: skip
    """Run one property under hypothesis; the last failure recorded is the shrunk one it replays."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hseed

    failures: list[tuple[str, Any]] = []
    count = [0]

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, verbosity=Verbosity.quiet, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])  # fmt: skip
    @given(batch_strategy)
    def prop(batch: list) -> None:
        count[0] += 1
        problem = check_batch(batch)
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
    if not failures:
        return Check(name, True, f"held for {count[0]} batches of observations", examples=count[0])
    detail, counterexample = failures[-1]
    return Check(name, False, detail, counterexample, examples=count[0])


def property_checks(program: Program, renv: ResolvedEnv, *, seed: int = 0, examples: int = 60, batch: int = 32,
                    time_limit: float = 0.02, unsafe: bool = False,
                    rollout_seeds: Sequence[int] = range(3)) -> tuple[list[Check], list[dict], dict]:  # fmt: skip
    """The four properties, each with its own hypothesis run and counterexample."""
    from hypothesis import strategies as st

    from scriptrl.trace import run_episodes

    probe = renv.make()
    obs_space, act_space = probe.observation_space, probe.action_space
    probe.close()
    codec = observation_codec(obs_space)
    check = make_checker(act_space)
    bounds: list[dict] = []
    if isinstance(obs_space, spaces.Box):
        seen, _ = _random_rollouts(renv, list(rollout_seeds))
        if not (np.all(np.isfinite(obs_space.low)) and np.all(np.isfinite(obs_space.high))):
            own: list = []
            try:
                run_episodes(program, renv, list(rollout_seeds), unsafe=unsafe,
                             on_step=lambda s, env: own.append(s.obs))  # fmt: skip
            except UserError:
                pass  # a policy that cannot even load fails the properties below, with the reason
            seen = seen + own
        bounds = observation_bounds(obs_space, seen)
    one = observation_strategy(obs_space, bounds)
    batches = st.lists(one, min_size=1, max_size=batch)
    asker = _Asker(program, codec, seed, unsafe, time_limit)
    asker._ensure()  # a program that cannot load fails here, in one line, before any property runs

    def valid(b: list) -> tuple[str, Any] | None:
        try:
            actions, _ = asker.ask(b)
        except WorkerFailure:
            return None  # a crash or hang is the next property's finding
        for o, a in zip(b, actions, strict=True):
            if isinstance(a, dict) and a.get("t") == "err":
                continue
            _, reason = check(a)
            if reason is not None:
                return f"{reason} for observation {_show(o)}", {"observation": _show(o), "action": a}
        return None

    def no_exception(b: list) -> tuple[str, Any] | None:
        try:
            actions, _ = asker.ask(b)
        except WorkerFailure as e:
            if len(b) == 1:
                return f"the worker died on observation {_show(b[0])}: {e.reason}", {"observation": _show(b[0])}
            return f"the worker died on a batch of {len(b)}: {e.reason}", {"observations": _show(b)}
        for o, a in zip(b, actions, strict=True):
            if isinstance(a, dict) and a.get("t") == "err":
                return f"{a.get('m')} for observation {_show(o)}", {"observation": _show(o), "error": a.get("m")}
        return None

    def deterministic(b: list) -> tuple[str, Any] | None:
        try:
            actions, _ = asker.ask(list(b) + list(b))
        except WorkerFailure:
            return None
        n = len(b)
        for o, a1, a2 in zip(b, actions[:n], actions[n:], strict=True):
            if json.dumps(a1, sort_keys=True) != json.dumps(a2, sort_keys=True):
                return (f"observation {_show(o)} gave {a1!r} and then {a2!r}",
                        {"observation": _show(o), "actions": [a1, a2]})  # fmt: skip
        return None

    def fast(b: list) -> tuple[str, Any] | None:
        # One observation per message, so a slow input is timed alone instead of averaged away.
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
                return (f"{1000 * seconds:.1f} ms per call (limit {1000 * time_limit:g} ms) for observation {_show(o)}",
                        {"observation": _show(o), "ms_per_call": round(1000 * seconds, 2)})  # fmt: skip
        return None

    checks = []
    try:
        for name, fn in (("valid action", valid), ("no exception", no_exception),
                         ("same observation, same action", deterministic),
                         (f"under {1000 * time_limit:g} ms per call", fast)):  # fmt: skip
            checks.append(_run_property(name, batches, fn, examples, seed))
    finally:
        asker.close()
    return checks, bounds, asker.isolation


# --------------------------------------------------------------------------- robustness


def _typical_ranges(renv: ResolvedEnv, space: spaces.Space, seen: list) -> np.ndarray | None:
    """The range each observation component typically takes: the curated description, else rollouts."""
    if not isinstance(space, spaces.Box) or np.dtype(space.dtype).kind != "f":
        return None
    size = int(np.prod(space.shape))
    comps = renv.description.observation
    if len(comps) == size and all(c.low is not None and c.high is not None for c in comps):
        return np.array([float(c.high) - float(c.low) for c in comps])
    arr = np.asarray(seen, dtype=np.float64).reshape(len(seen), -1)
    return np.maximum(arr.max(0) - arr.min(0), 1e-6) if len(seen) else None


def _retention(score: float, random: float, clean: float, random_clean: float) -> float | None:
    span = clean - random_clean
    if not math.isfinite(span) or span <= 1e-9:
        return None
    return (score - random) / span


def robustness_gate(program: Program, renv: ResolvedEnv, *, episodes: int = 20, seed: int = HOLDOUT_START,
                    noise_levels: Sequence[float] = NOISE_LEVELS, min_retention: float = 0.75,
                    unsafe: bool = False, progress: Callable[[str], None] | None = None) -> list[Robustness]:  # fmt: skip
    """Scores under noise, a doubled horizon and perturbed physics, each against a random policy."""
    from scriptrl.evaluate import EvalConfig, evaluate

    seeds = list(range(seed, seed + episodes))
    config = EvalConfig(unsafe_in_process=unsafe)
    say = progress or (lambda _msg: None)
    rows: list[Robustness] = []

    def score(env: ResolvedEnv):
        return evaluate(program, env, seeds, config, split="verify")

    def random_score(env: ResolvedEnv) -> tuple[float, list[list[float]]]:
        _, rewards = _random_rollouts(env, seeds, max_steps=env_max_steps(env))
        return statistics.fmean(sum(r) for r in rewards), rewards

    def env_max_steps(env: ResolvedEnv) -> int:
        horizon = getattr(env, "horizon", None) or env.max_episode_steps or 1000
        return int(horizon)

    say("clean")
    clean = score(renv)
    rand_clean, rand_clean_rewards = random_score(renv)
    if clean.failures:
        f = clean.failures[0]
        rows.append(Robustness("clean", clean.mean, tuple(clean.ci95), rand_clean, None, False,
                               f"{len(clean.failures)} episode(s) failed, e.g. seed {f['seed']}: {f['reason']}"))  # fmt: skip
        return rows
    rows.append(Robustness("clean", clean.mean, tuple(clean.ci95), rand_clean, 1.0, None,
                           f"reference: {episodes} episodes, seeds {seeds[0]}-{seeds[-1]}"))  # fmt: skip
    if _retention(clean.mean, rand_clean, clean.mean, rand_clean) is None:
        rows[-1].detail += "; no better than a random policy, so retention cannot be measured"
        return rows

    def judge(condition: str, env: ResolvedEnv) -> None:
        say(condition)
        res = score(env)
        rnd, _ = random_score(env)
        ret = _retention(res.mean, rnd, clean.mean, rand_clean)
        ok = ret is not None and ret >= min_retention and not res.failures
        detail = f"keeps {100 * ret:.0f}% of the clean margin over random" if ret is not None else ""
        if res.failures:
            f = res.failures[0]
            detail = f"{len(res.failures)} episode(s) failed, e.g. seed {f['seed']}: {f['reason']}"
        elif not ok:
            detail += f" (needs {100 * min_retention:.0f}%)"
        rows.append(Robustness(condition, res.mean, tuple(res.ci95), rnd, ret, ok, detail))

    probe = renv.make()
    space = probe.observation_space
    probe.close()
    seen, _ = _random_rollouts(renv, seeds[:3])
    ranges = _typical_ranges(renv, space, seen)
    if ranges is None:
        rows.append(Robustness("observation noise", None, None, None, None, None,
                               "not applicable: observations are not continuous"))  # fmt: skip
    else:
        for level in noise_levels:
            sigma = tuple(float(level * r) for r in ranges)
            judge(f"noise {100 * level:g}% of range", PerturbedEnv.of(renv, condition=f"noise {level:g}", noise=sigma))

    limit = renv.max_episode_steps
    if not limit or ":" in renv.id:
        rows.append(Robustness("horizon x2", None, None, None, None, None,
                               "not applicable: the environment has no registered time limit"))  # fmt: skip
    else:
        say("horizon x2")
        long_env = PerturbedEnv.of(renv, condition="horizon x2", horizon=2 * limit)
        res = score(long_env)
        _, rand_rewards = _random_rollouts(long_env, seeds, max_steps=2 * limit)
        # Episodes that lived to the usual limit: what they earn in the extra steps, against
        # what they earned before it (same seeds, so the first part is the same episode).
        reached = [i for i, n in enumerate(clean.lengths) if n >= limit]
        if res.failures:
            f = res.failures[0]
            rows.append(Robustness("horizon x2", res.mean, tuple(res.ci95), None, None, False,
                                   f"{len(res.failures)} episode(s) failed, e.g. seed {f['seed']}: {f['reason']}"))  # fmt: skip
        elif not reached:
            rows.append(Robustness("horizon x2", res.mean, tuple(res.ci95), None, None, None,
                                   f"not applicable: no episode lasted to the time limit of {limit} steps"))  # fmt: skip
        else:
            second = statistics.fmean(res.returns[i] - clean.returns[i] for i in reached)
            first = statistics.fmean(clean.returns[i] for i in reached)
            rand_second = statistics.fmean(sum(r[limit:]) for r in rand_rewards)
            rand_first = statistics.fmean(sum(r[:limit]) for r in rand_clean_rewards)
            ret = _retention(second, rand_second, first, rand_first)
            ok = ret is not None and ret >= min_retention
            detail = (f"steps {limit}-{2 * limit - 1} keep {100 * ret:.0f}% of the margin over random of steps 0-{limit - 1}"
                      if ret is not None else "the first part is no better than random")  # fmt: skip
            if not ok:
                detail += f" (needs {100 * min_retention:.0f}%)"
            rows.append(Robustness("horizon x2", res.mean, tuple(res.ci95), rand_second, ret, ok, detail))

    physics = PHYSICS.get(renv.id)
    if not physics:
        rows.append(Robustness("physics", None, None, None, None, None,
                               f"not applicable: scriptrl knows no physical parameters of {renv.id}"))  # fmt: skip
    else:
        for name, kwargs, attrs in physics:
            judge(name, PerturbedEnv.of(renv, condition=name, extra_kwargs=tuple(kwargs.items()),
                                        attrs=tuple(attrs.items())))  # fmt: skip
    return rows


# --------------------------------------------------------------------------- the command


def verify(program: Program | str, env: ResolvedEnv | str, *, seed: int = 0, examples: int = 60, batch: int = 32,
           time_limit: float = 0.02, episodes: int = 20, noise_levels: Sequence[float] = NOISE_LEVELS,
           min_retention: float = 0.75, robustness: bool = True, unsafe_in_process: bool = False,
           progress: Callable[[str], None] | None = None) -> VerifyReport:  # fmt: skip
    """Property checks, then (unless ``robustness`` is False) the robustness gate."""
    prog = program if isinstance(program, Program) else Program(source=program)
    renv = resolve_env(env) if isinstance(env, str) else env
    for name, value in (("--examples", examples), ("--batch", batch), ("--episodes", episodes)):
        if value < 1:
            raise UserError(f"{name} must be at least 1 (got {value})")
    if progress:
        progress("property checks")
    checks, bounds, isolation = property_checks(prog, renv, seed=seed, examples=examples, batch=batch,
                                                time_limit=time_limit, unsafe=unsafe_in_process)  # fmt: skip
    rows: list[Robustness] = []
    if robustness:
        rows = robustness_gate(prog, renv, episodes=episodes, noise_levels=noise_levels, min_retention=min_retention,
                               unsafe=unsafe_in_process, progress=progress)  # fmt: skip
    return VerifyReport(renv.label(), prog.name, checks, rows, bounds, isolation, min_retention)


def private_hypothesis_storage() -> None:
    """Keep hypothesis' cache out of the user's working directory (it writes ``.hypothesis/``
    there by default); a directory the user chose with HYPOTHESIS_STORAGE_DIRECTORY wins."""
    import os
    from pathlib import Path

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scriptrl" / "hypothesis"
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(cache))


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, fmt)


def print_verify_report(report: VerifyReport, console=None) -> None:
    """The pass/fail tables, then every failure with its counterexample on one line each."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 140))

    def verdict(p: bool | None) -> Text:
        return Text("n/a", style="dim") if p is None else Text("PASS", style="green") if p else Text("FAIL", style="bold red")

    table = Table(title=f"Properties of {report.program} on {report.env_label}", title_justify="left")
    table.add_column("property")
    table.add_column("result")
    table.add_column("detail")
    for c in report.checks:
        table.add_row(c.name, verdict(c.passed), Text(c.detail))
    console.print(table)
    rollout = [b for b in report.bounds if b["from"] == "rollouts"]
    if rollout:
        console.print(Text("unbounded components drawn from the range seen in rollouts: " + ", ".join(
            f"obs[{b['component']}] in [{b['low']:.3g}, {b['high']:.3g}]" for b in rollout), style="dim"))  # fmt: skip
    if report.robustness:
        table = Table(title="Robustness (retention = share of the clean margin over a random policy)", title_justify="left")
        for col, justify in (("condition", "left"), ("mean", "right"), ("95% CI", "right"), ("random", "right"),
                             ("retention", "right"), ("result", "left"), ("detail", "left")):  # fmt: skip
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for r in report.robustness:
            ci = "-" if r.ci95 is None else f"{_num(r.ci95[0])}..{_num(r.ci95[1])}"
            table.add_row(r.condition, _num(r.mean), ci, _num(r.random), _num(r.retention, ".0%"),
                          verdict(r.passed) if r.condition != "clean" or r.passed is False else Text("ref", style="dim"),
                          Text(r.detail))  # fmt: skip
        console.print(table)
    if report.passed:
        console.print(Text("verify: PASS", style="bold green"))
        return
    console.print(Text("verify: FAIL", style="bold red"))
    for c in report.checks:
        if c.passed is False:
            console.print(Text(f"counterexample ({c.name}): {json.dumps(c.counterexample, default=str)}"))
