"""The episode loop: environments here, the policy in a sandbox worker, two lanes in flight.

The policy runs in a sandbox worker that gets observations of many episodes in one message and
returns their actions in one, and the episodes are split into two lanes so the worker computes
one lane's actions while this process steps the other's environments. Rewards are computed
here; nothing the worker says counts except the actions, and each is validated before ``env.step``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import gymnasium
import numpy as np

from scriptrl.envs import ResolvedEnv
from scriptrl.envs.success_rule import EpisodeSummary, rule_of
from scriptrl.evaluate.config import EvalConfig
from scriptrl.evaluate.digest import _note_visit, _plain
from scriptrl.evaluate.observer import Step, StepObserver
from scriptrl.evaluate.results import Episode
from scriptrl.evaluate.stall import StallWatch
from scriptrl.program import ALLOWED_IMPORTS, Program
from scriptrl.sandbox.actions import make_checker, observation_codec, plain_data
from scriptrl.sandbox.client import (
    InProcessWorker,
    ProgramLoadError,
    SandboxWorker,
    WorkerFailure,
    new_worker,
    open_worker,
)


class _Slot:
    """One environment instance and the episode currently running on it."""

    __slots__ = ("env", "ep", "eid", "obs", "tail", "hist", "cont", "started", "used", "watch", "summary")
    # set by _EpisodeLoop._begin for each episode: its index, last observation, digest tail,
    # action histogram (discrete actions) or action list (continuous), start time, stall watch,
    # and the running figures its success rule reads (None when the environment defines none)
    eid: int
    obs: Any
    tail: deque
    hist: list[int] | None
    cont: list | None
    started: float
    watch: StallWatch | None
    summary: EpisodeSummary | None

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


def _begin_worker(config: EvalConfig, traced: bool = False) -> SandboxWorker | InProcessWorker:
    """Begin starting a worker (a fork of the zygote, or a fresh interpreter) while the environments
    are built."""
    return new_worker(
        config.limits,
        traced=traced,
        unsafe=config.unsafe_in_process,
        fork_server=config.fork_server,
        warm_spare=config.warm_spare,
    )


def _start_worker(
    prog: Program,
    codec: dict,
    seed: int,
    config: EvalConfig,
    worker=None,
    traced: bool = False,
    family: dict | None = None,
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
        family=family,
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
        family: dict | None = None,
    ) -> None:
        self.prog, self.renv, self.episodes, self.config = prog, renv, episodes, config
        self.observer, self.traced = observer, traced
        self.family = family  # variants and each episode's variant (``scriptrl.evaluate.family``)
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
        self.success_rule = rule_of(renv)
        self.unreported: dict[str, int] = {}  # info keys the rule names -> episodes that lacked them

    def run(self, strict_open: bool = False) -> tuple[dict[str, str], int]:
        """Run every episode; with ``strict_open`` a program or worker that fails to start
        raises (ProgramLoadError, WorkerFailure) instead of failing the episodes."""
        try:
            try:
                self.worker, self.isolation = _start_worker(
                    self.prog, self.codec, self.run_seed, self.config, self.worker, self.traced, self.family
                )
            except ProgramLoadError as e:
                if strict_open:
                    raise
                self._abandon("exception while loading: " + str(e))
                return e.isolation, 0
            except WorkerFailure as e:
                if strict_open:
                    raise
                self._abandon(e.reason)
                return self.isolation, 0
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
        slot.summary = self.success_rule.tracker() if self.success_rule else None
        new.append([eid, ep.seed])

    def _finish(self, slot: _Slot, end: str, reason: str | None = None) -> None:
        ep = slot.ep
        assert ep is not None  # only a slot running an episode finishes one
        ep.end, ep.reason = end, (reason[:400] if reason else reason)
        if slot.summary is not None and self.success_rule is not None:
            ep.success = self.success_rule.judge(slot.summary, end)
            if end != "failure":
                for key in slot.summary.missing():
                    self.unreported[key] = self.unreported.get(key, 0) + 1
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
            ep.success = False if self.success_rule else None

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
                self.prog,
                self.codec,
                self.run_seed + self.restarts,
                self.config,
                traced=self.traced,
                family=self.family,
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
            ep = s.ep
            assert ep is not None  # an active slot runs an episode
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
                            ep.seed,
                            ep.length,
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
                obs, r, term, trunc, info = s.env.step(act)
                if s.summary is not None:
                    s.summary.step(float(r), info)
                self.env_steps += 1
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
                elif s.cont is not None:
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
