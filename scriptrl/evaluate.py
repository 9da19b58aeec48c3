"""The trusted evaluator: seed splits, the episode loop, statistics and episode digests.

The environment lives here and only here. The policy runs in a sandbox worker that gets
observations of many episodes in one message and returns their actions in one, and the
episodes are split into two lanes so the worker computes one lane's actions while this
process steps the other's environments. Rewards are computed here; nothing the worker
says counts except the actions, and each is validated before ``env.step``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import gymnasium
import numpy as np

from scriptrl.actions import make_checker, observation_codec, plain_data
from scriptrl.envs import ResolvedEnv, resolve_env
from scriptrl.observer import Step, StepObserver
from scriptrl.program import ALLOWED_IMPORTS, Program, check_source
from scriptrl.sandbox.client import (
    InProcessWorker,
    ProgramLoadError,
    SandboxLimits,
    SandboxWorker,
    WorkerFailure,
    new_worker,
    open_worker,
    release_spare_workers,  # noqa: F401  (re-exported: scriptrl.evaluate.release_spare_workers)
)
from scriptrl.seeds import SeedSplits  # noqa: F401  (re-exported: scriptrl.evaluate.SeedSplits)
from scriptrl.stall import StallRule, StallWatch, stall_allowed


@dataclass(frozen=True)
class EvalConfig:
    """How one evaluation runs; the defaults are the safe ones."""

    call_timeout: float = 2.0  # seconds for the worker to answer one batch
    per_action_timeout: float = 0.02  # added per observation in the batch
    episode_timeout: float = 120.0  # wall seconds for one episode
    max_concurrency: int = 64  # episodes in flight per worker
    max_restarts: int = 3  # worker replacements before the remaining episodes fail
    digest_tail: int = 5  # observations kept from the end of each episode
    step_cap: int = 1000  # episode length limit for environments that have none (CliffWalking)
    stall: StallRule | None = None  # screening only: end episodes that go nowhere (never holdout or audit)
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    unsafe_in_process: bool = False  # run trusted code in this process (no isolation)
    static_checks: bool = True  # filter clear errors before starting a worker
    allow_module_state: bool = False  # accept module-level state (the user asked, with a warning)
    import_guard: bool = True  # runtime allow-list for imports inside the worker
    warm_spare: bool = (
        False  # spawn mode: keep one started worker ready for the next evaluation (search loops)
    )
    fork_server: bool = True  # fork each worker from a pre-imported zygote; False spawns one (debugging)


@dataclass
class Episode:
    seed: int
    ret: float = 0.0
    length: int = 0
    end: str = "running"  # terminated | truncated | failure
    reason: str | None = None
    tail: list = field(default_factory=list)
    action_summary: dict = field(default_factory=dict)
    null_return: float | None = None  # after a failure: what doing nothing scores on this seed


@dataclass
class EvalResult:
    env_id: str
    env_label: str
    gymnasium_version: str
    split: str
    seeds: list[int]
    returns: list[float]
    lengths: list[int]
    mean: float
    std: float
    ci95: tuple[float, float]
    median: float
    min: float
    max: float
    env_steps: int
    seconds: float
    failures: list[dict]
    episodes: list[Episode]
    isolation: dict[str, str]
    program_sha256: str
    notice: str | None = None

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.seconds if self.seconds > 0 else 0.0

    @property
    def termination_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ep in self.episodes:
            counts[ep.end] = counts.get(ep.end, 0) + 1
        return counts

    def to_dict(self, with_episodes: bool = True) -> dict[str, Any]:
        d = asdict(self)
        d["episodes_count"] = len(self.returns)
        d["termination"] = self.termination_counts
        d["steps_per_second"] = self.steps_per_second
        if not with_episodes:
            d.pop("episodes")
        return d


# Two-sided 97.5 % Student t quantiles for small samples; 1.96 beyond.
_T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    25: 2.060,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}


def confidence_interval(values: list[float]) -> tuple[float, float]:
    """95 % t-interval of the mean: honest about how little 5 or 20 episodes say."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return (mean, mean)
    df = n - 1
    t = next((_T975[k] for k in sorted(_T975) if k >= df), 1.96)
    half = t * statistics.stdev(values) / math.sqrt(n)
    return (mean - half, mean + half)


class _Slot:
    """One environment instance and the episode currently running on it."""

    __slots__ = ("env", "ep", "eid", "obs", "tail", "hist", "cont", "started", "used", "watch")

    def __init__(self, env: gymnasium.Env) -> None:
        self.env = env
        self.ep: Episode | None = None
        self.used = False  # an episode ran on env: the next one gets a fresh environment

    def fresh_env(self, renv: ResolvedEnv) -> gymnasium.Env:
        """The environment for the next episode, never one an earlier episode ran on: some
        keep state across ``reset()`` (BipedalWalker's Box2D world), and a seed's return must
        not depend on which episodes shared the evaluation."""
        if self.used:
            self.env.close()
            self.env = renv.make()
        self.used = True
        return self.env


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
    config = config or EvalConfig()
    if config.stall is not None and not stall_allowed(split, seeds):
        config = replace(config, stall=None)
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
    if problems:
        for ep in episodes:
            ep.end, ep.reason = "failure", "rejected before running: " + problems[0]
    else:
        isolation, env_steps = _EpisodeLoop(prog, renv, episodes, config).run()
    env_steps += _cap_failures(renv, episodes, config)
    return _summarize(prog, renv, split, episodes, isolation, env_steps, time.perf_counter() - started)


def null_action(space: gymnasium.Space) -> Any:
    """What "doing nothing" means for a space: the first discrete action, or zeros clipped into range."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return int(space.start)
    if isinstance(space, spaces.Box):
        return np.clip(np.zeros(space.shape), space.low, space.high).astype(space.dtype)
    if isinstance(space, spaces.MultiDiscrete | spaces.MultiBinary):
        return np.zeros(space.shape, dtype=space.dtype)
    return None


def _null_return(env: gymnasium.Env, seed: int, cap: int | None) -> tuple[float, int]:
    """Return and length of one episode that always plays the null action."""
    action = null_action(env.action_space)
    env.reset(seed=seed)
    ret, steps = 0.0, 0
    if action is None:
        return ret, steps
    while cap is None or steps < cap:
        _, r, term, trunc, _ = env.step(action)
        ret += float(r)
        steps += 1
        if term or trunc:
            break
    return ret, steps


def _cap_failures(renv: ResolvedEnv, episodes: list[Episode], config: EvalConfig) -> int:
    """A failed episode scores the lower of what it earned before failing and what doing
    nothing scores on the same seed. Failing then never pays: a policy that crashes at step 0
    would otherwise score 0 on Pendulum (honest ones score about -1200), and one that crashes
    late would keep most of a CartPole episode."""
    failed = [ep for ep in episodes if ep.end == "failure"]
    if not failed:
        return 0
    cap = renv.max_episode_steps or config.step_cap
    steps = 0
    for ep in failed:
        env = renv.make()  # one per seed, like the episodes themselves
        try:
            ep.null_return, n = _null_return(env, ep.seed, cap)
        finally:
            env.close()
        ep.ret = min(ep.ret, ep.null_return)
        steps += n
    return steps


def _begin_worker(config: EvalConfig, traced: bool = False) -> SandboxWorker | InProcessWorker:
    """Begin starting a worker (a fork of the zygote, or a fresh interpreter) while the environments are built."""
    return new_worker(
        config.limits,
        traced=traced,
        unsafe=config.unsafe_in_process,
        fork_server=config.fork_server,
        warm_spare=config.warm_spare,
    )


def _start_worker(
    prog: Program, codec: dict, seed: int, config: EvalConfig, worker=None, traced: bool = False
):
    allowed = sorted(ALLOWED_IMPORTS) if config.import_guard else None
    worker = open_worker(
        prog.source,
        prog.name,
        codec,
        seed,
        allowed_imports=allowed,
        limits=config.limits,
        worker=worker or _begin_worker(config, traced),
    )
    return worker, worker.isolation


class _EpisodeLoop:
    """One evaluation's hot loop: environments here, policy in the worker, two lanes in flight.

    Each lane is a list of slots (an environment and the episode running on it). While the
    worker computes one lane's actions, this process steps the other lane's environments.
    A worker failure ends the episodes of the lane it was computing; a stateless policy's
    other episodes carry on with a fresh worker. An ``observer`` (explain, verify, render) sees
    every reset and decision, in step order: observed runs step all episodes in one lane.
    """

    def __init__(
        self,
        prog: Program,
        renv: ResolvedEnv,
        episodes: list[Episode],
        config: EvalConfig,
        observer: StepObserver | None = None,
        traced: bool = False,
    ) -> None:
        self.prog, self.renv, self.episodes, self.config = prog, renv, episodes, config
        self.observer, self.traced = observer, traced
        self.worker = _begin_worker(config, traced)  # the worker starts while the environments are built
        try:
            probe = renv.make()
        except BaseException:
            self.worker.kill()
            raise
        self.codec = observation_codec(probe.observation_space)
        self.check = make_checker(probe.action_space)
        space = probe.action_space
        self.discrete = (
            (int(space.start), int(space.n)) if hasattr(space, "n") and hasattr(space, "start") else None
        )
        n_slots = max(1, min(config.max_concurrency, len(episodes)))
        self.slots = [_Slot(probe)] + [_Slot(renv.make()) for _ in range(n_slots - 1)]
        half = (n_slots + 1) // 2
        self.lanes = (
            [self.slots[:half], self.slots[half:]] if n_slots > 1 and observer is None else [self.slots]
        )
        self.pending = deque(range(len(episodes)))
        try:
            self.stateful = prog.entry_kind == "class"
        except Exception:  # unparsable (static checks off): the worker reports the load error
            self.stateful = False
        self.run_seed = episodes[0].seed if episodes else 0
        # Environments without a time limit could run forever under a policy that never finishes.
        self.step_cap = None if renv.max_episode_steps else config.step_cap
        self.env_steps = 0
        self.restarts = 0
        self.isolation: dict[str, str] = {}
        self.inflight: deque[tuple[list[_Slot], list[_Slot], WorkerFailure | None]] = deque()
        self.ended_ids: list[int] = []

    def run(self, strict_open: bool = False) -> tuple[dict[str, str], int]:
        """Run every episode; with ``strict_open`` a program or worker that fails to start
        raises (ProgramLoadError, WorkerFailure) instead of failing the episodes."""
        try:
            try:
                self.worker, self.isolation = _start_worker(
                    self.prog, self.codec, self.run_seed, self.config, self.worker, self.traced
                )
            except (ProgramLoadError, WorkerFailure) as e:
                if strict_open:
                    raise
                loading = isinstance(e, ProgramLoadError)
                self._abandon("exception while loading: " + str(e) if loading else e.reason)
                return e.isolation if loading else self.isolation, 0
            self._refill_and_dispatch()
            while self.inflight:
                lane, active, send_error = self.inflight.popleft()
                try:
                    if send_error is not None:
                        raise send_error
                    reply = self.worker.reply(
                        len(active), self.config.call_timeout + self.config.per_action_timeout * len(active)
                    )
                except WorkerFailure as e:
                    if not self._recover(active, e):
                        break
                    continue
                self._step(lane, active, reply.actions, reply.traces)
            self.worker.close()
        finally:
            self.worker.kill()
            for s in self.slots:
                s.env.close()
        return self.isolation, self.env_steps

    # --- episodes --------------------------------------------------------------------
    def _begin(self, slot: _Slot, new: list) -> None:
        if not self.pending:
            return
        eid = self.pending.popleft()
        ep = self.episodes[eid]
        slot.ep, slot.eid, slot.started = ep, eid, time.monotonic()
        slot.obs, _ = slot.fresh_env(self.renv).reset(seed=ep.seed)
        if self.observer is not None:
            self.observer.on_reset(eid, slot.env)
        slot.tail = deque(maxlen=self.config.digest_tail)
        slot.hist = [0] * self.discrete[1] if self.discrete else None
        slot.cont = None if self.discrete else []
        slot.watch = StallWatch(self.config.stall, slot.obs) if self.config.stall else None
        new.append([eid, ep.seed])

    def _finish(self, slot: _Slot, end: str, reason: str | None = None) -> None:
        ep = slot.ep
        ep.end, ep.reason = end, (reason[:400] if reason else reason)
        ep.tail = [{"obs": _plain(o), "action": _plain(a)} for o, a in slot.tail]
        if slot.hist is not None:
            ep.action_summary = {**ep.action_summary, "histogram": list(slot.hist)}
        elif slot.cont:
            arr = np.asarray(slot.cont, dtype=np.float64)
            ep.action_summary = {
                "mean": arr.mean(0).round(4).tolist(),
                "min": arr.min(0).tolist(),
                "max": arr.max(0).tolist(),
            }
        slot.ep = None
        if self.stateful:
            self.ended_ids.append(slot.eid)

    def _abandon(self, why: str) -> None:
        """Fail everything still running or waiting, with one reason."""
        for s in self.slots:
            if s.ep is not None:
                self._finish(s, "failure", why)
        while self.pending:
            ep = self.episodes[self.pending.popleft()]
            ep.end, ep.reason = "failure", why[:400]

    # --- talking to the worker ----------------------------------------------------------
    def _refill_and_dispatch(self) -> None:
        for lane in self.lanes:
            new: list = []
            for s in lane:
                if s.ep is None:
                    self._begin(s, new)
            self._dispatch(lane, new)

    def _dispatch(self, lane: list[_Slot], new: list) -> None:
        active = [s for s in lane if s.ep is not None]
        if not active:
            return
        ended = None
        if self.stateful:
            ended = list(self.ended_ids)
            self.ended_ids.clear()
        try:
            self.worker.request(
                [s.eid for s in active], [s.obs for s in active], new if self.stateful else None, ended
            )
            self.inflight.append((lane, active, None))
        except WorkerFailure as e:  # surfaces where replies are read, like any other failure
            self.inflight.append((lane, active, e))

    def _recover(self, active: list[_Slot], e: WorkerFailure) -> bool:
        """Fail the lane the worker was computing and start a new worker; False when giving up."""
        for s in active:
            self._finish(s, "failure", e.reason)
        others = [s for _, act, _ in self.inflight for s in act]
        self.inflight.clear()
        if self.stateful:  # their state lived in the dead worker
            for s in others:
                self._finish(s, "failure", "the worker was replaced after a failure in another episode")
        self.restarts += 1
        if self.restarts > self.config.max_restarts:
            self._abandon(f"not run: the worker failed {self.restarts} times (last: {e.reason})")
            return False
        try:
            self.worker, _ = _start_worker(
                self.prog, self.codec, self.run_seed + self.restarts, self.config, traced=self.traced
            )
        except (WorkerFailure, ProgramLoadError) as e2:
            self._abandon(f"not run: the worker could not be replaced ({e2})")
            return False
        self._refill_and_dispatch()
        return True

    # --- the environment side ------------------------------------------------------------
    def _step(self, lane: list[_Slot], active: list[_Slot], actions: list, traces: list | None) -> None:
        now = time.monotonic()
        check, cap, timeout = self.check, self.step_cap, self.config.episode_timeout
        start = self.discrete[0] if self.discrete else 0
        observer = self.observer
        new: list = []
        for i, (s, a) in enumerate(zip(active, actions, strict=True)):
            try:
                act, reason = check(a)
            except Exception:  # whatever the worker sent, it cannot crash the evaluator
                act, reason = None, "invalid action: malformed action data"
            if reason is not None:
                if isinstance(a, dict) and a.get("t") == "err":
                    reason = "exception: " + str(a.get("m"))[:400]
                if observer is not None:
                    observer.on_step(
                        Step(
                            s.eid,
                            s.ep.seed,
                            s.ep.length,
                            plain_data(s.obs),
                            None,
                            0.0,
                            traces[i] if traces else None,
                            reason,
                        ),
                        s.env,
                    )
                self._finish(s, "failure", reason)
            else:
                obs, r, term, trunc, _ = s.env.step(act)
                self.env_steps += 1
                ep = s.ep
                ep.ret += float(r)
                ep.length += 1
                if observer is not None:
                    observer.on_step(
                        Step(
                            s.eid,
                            ep.seed,
                            ep.length - 1,
                            plain_data(s.obs),
                            plain_data(act),
                            float(r),
                            traces[i] if traces else None,
                        ),
                        s.env,
                    )
                s.tail.append((s.obs, a))
                _note_visit(ep, s.obs)
                s.obs = obs
                if s.hist is not None:
                    s.hist[act - start] += 1
                else:
                    s.cont.append(a["v"])
                if term:
                    self._finish(s, "terminated")
                elif trunc:
                    self._finish(s, "truncated")
                elif cap is not None and ep.length >= cap:
                    self._finish(
                        s, "truncated", f"scriptrl's step cap of {cap} (the environment has no time limit)"
                    )
                elif s.watch is not None and (why := s.watch.update(obs, ep.ret, ep.length)):
                    self._finish(s, "stalled", why)
                elif now - s.started > timeout:
                    self._finish(s, "failure", f"timeout: the episode took over {timeout:g} s of wall time")
            if s.ep is None:
                self._begin(s, new)
        self._dispatch(lane, new)


#: Distinct discrete states an episode digest counts visits of (the rest are left out).
_MAX_VISITED = 512


def _note_visit(ep: Episode, obs: Any) -> None:
    """Count each discrete state the episode acts in (keys in first-visit order), so a generator can
    tell the states on the way to a success from those before a failure or in a loop."""
    if isinstance(obs, int | np.integer) and not isinstance(obs, bool):
        visits = ep.action_summary.setdefault("visits", {})
        key = str(int(obs))  # JSON object keys are strings, before and after the run store
        if key in visits or len(visits) < _MAX_VISITED:
            visits[key] = visits.get(key, 0) + 1


def _plain(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return [round(float(v), 5) for v in x.ravel()] if x.dtype.kind == "f" else x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict) and x.get("t") == "arr":
        return x.get("v")
    if isinstance(x, tuple | list):
        return [_plain(v) for v in x]
    return x


def _summarize(prog, renv, split, episodes, isolation, env_steps, seconds) -> EvalResult:
    return _from_episodes(
        episodes,
        split=split,
        env_id=renv.id,
        env_label=renv.label(),
        gymnasium_version=renv.gymnasium_version,
        env_steps=env_steps,
        seconds=seconds,
        isolation=isolation,
        program_sha256=prog.sha256,
        notice=renv.notice,
    )


def _from_episodes(episodes: list[Episode], **fields: Any) -> EvalResult:
    """Statistics are always recomputed from episodes, so merged results stay consistent."""
    returns = [ep.ret for ep in episodes]
    nan = float("nan")
    failures = [
        {"seed": ep.seed, "step": ep.length, "reason": ep.reason} for ep in episodes if ep.end == "failure"
    ]
    return EvalResult(
        seeds=[ep.seed for ep in episodes],
        returns=returns,
        lengths=[ep.length for ep in episodes],
        mean=statistics.fmean(returns) if returns else nan,
        std=statistics.pstdev(returns) if len(returns) > 1 else 0.0,
        ci95=confidence_interval(returns) if returns else (nan, nan),
        median=statistics.median(returns) if returns else nan,
        min=min(returns) if returns else nan,
        max=max(returns) if returns else nan,
        failures=failures,
        episodes=episodes,
        **fields,
    )


def combine_results(parts: list[EvalResult], split: str | None = None) -> EvalResult:
    """One result over the union of episodes, so a full evaluation can reuse a cheap one."""
    first = parts[0]
    return _from_episodes(
        [ep for r in parts for ep in r.episodes],
        split=split or first.split,
        env_id=first.env_id,
        env_label=first.env_label,
        gymnasium_version=first.gymnasium_version,
        env_steps=sum(r.env_steps for r in parts),
        seconds=sum(r.seconds for r in parts),
        isolation=next((r.isolation for r in parts if r.isolation), {}),
        program_sha256=first.program_sha256,
        notice=first.notice,
    )
