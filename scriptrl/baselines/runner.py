"""The baseline's training loop: Stable-Baselines3 learning, with a checkpoint exported,
stored and scored every ``eval_every`` steps, and champions confirmed as the search confirms them
(see ``scriptrl.baselines.train`` for the protocol)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from scriptrl.baselines.zoo import ZooEntry, sb3_kwargs
from scriptrl.errors import UserError

#: Largest exported program, well inside the sandbox's 8 MB load header.
MAX_SOURCE_BYTES = 6 * 1024 * 1024


class _Runner:
    def __init__(self, store, renv, entry: ZooEntry, config: dict, progress) -> None:
        self.store, self.renv, self.entry, self.config, self.progress = store, renv, entry, config, progress
        self.target = config["target"]
        self.eval_every = int(config["eval_every"])
        self.max_seconds = config["max_seconds"]
        self.total = int(config["total_timesteps"])
        # a checkpoint at least every 1/20 of a time budget, so a slow env still draws a curve
        self.time_every = self.max_seconds / 20 if self.max_seconds else None
        self.started = time.monotonic()
        self.train_seconds = 0.0  # training only: measuring time is excluded
        self._clock = time.monotonic()
        self.steps_at_ckpt = 0
        self.train_seconds_at_ckpt = 0.0
        self.returns: list[float] = []  # training episodes since the last checkpoint
        self.checkpoints = 0
        self.last_pid: int | None = None
        self.champion: dict | None = None
        self.best_dev = float("-inf")
        self.best_dev_id: int | None = None
        self.best_dev_source: str | None = None
        self.best_dev_result = None
        self.stop_reason: str | None = None
        self.sources: dict[int, str] = {}
        self.verified = 0.0

    # ------------------------------------------------------------------ training

    def run(self) -> None:
        from stable_baselines3.common.callbacks import BaseCallback

        from scriptrl.evaluate import EvalConfig

        self.eval_config = EvalConfig(warm_spare=True)
        model, venv, vecnorm = self._build()
        self.model, self.vecnorm = model, vecnorm
        self.store.add_event(
            "start",
            {
                "env": self.renv.label(),
                "target": self.target,
                "iteration": 0,
                "algo": self.entry.algo,
                "total_timesteps": self.total,
            },
        )
        runner = self

        class _Hook(BaseCallback):
            def _on_step(self) -> bool:
                return runner.on_step(self.num_timesteps, self.locals.get("infos") or [])

        self._clock = time.monotonic()
        try:
            model.learn(total_timesteps=self.total, callback=_Hook(), progress_bar=False)
            self._pause()
            if self.stop_reason is None:
                self.stop_reason = f"the zoo's training budget is spent ({self.total:,} steps)"
                if self.config["max_env_steps"] and self.total == self.config["max_env_steps"]:
                    self.stop_reason = f"env-step budget reached ({self.total:,})"
            if int(model.num_timesteps) > self.steps_at_ckpt or self.checkpoints == 0:
                self._checkpoint(int(model.num_timesteps))
            self._finish()
        finally:
            venv.close()
            from scriptrl.evaluate import release_spare_workers

            release_spare_workers()  # the warm spare must not outlive the run

    def _build(self):
        import stable_baselines3 as sb3
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

        algo_cls = {"ppo": sb3.PPO, "dqn": sb3.DQN, "a2c": sb3.A2C, "sac": sb3.SAC}[self.entry.algo]
        kwargs = sb3_kwargs(self.entry)
        seed = int(self.config["seed"])
        renv = self.renv
        venv = make_vec_env(lambda: renv.make(), n_envs=self.entry.n_envs, seed=seed, vec_env_cls=DummyVecEnv)
        vecnorm = None
        if self.entry.normalize:
            vecnorm = VecNormalize(venv, gamma=float(kwargs.get("gamma", 0.99)))
            venv = vecnorm
        try:
            model = algo_cls("MlpPolicy", venv, seed=seed, verbose=0, device="cpu", **kwargs)
        except TypeError as e:
            raise UserError(
                f"hyperparams.toml entry for {self.entry.algo} {self.entry.env_id} is invalid: {e}"
            ) from None
        return model, venv, vecnorm

    def _pause(self) -> None:
        now = time.monotonic()
        self.train_seconds += now - self._clock
        self._clock = now

    def _resume(self) -> None:
        self._clock = time.monotonic()

    def wall(self) -> float:
        return time.monotonic() - self.started

    def on_step(self, steps: int, infos: list[dict]) -> bool:
        for info in infos:
            ep = info.get("episode") if isinstance(info, dict) else None
            if ep is not None:
                self.returns.append(float(ep["r"]))
        trained = self.train_seconds + (time.monotonic() - self._clock)
        if self.max_seconds is not None and trained >= self.max_seconds:
            self._pause()
            self.stop_reason = f"time budget reached ({self.max_seconds:g} s of training)"
            return False
        due = steps - self.steps_at_ckpt >= self.eval_every
        if not due and self.time_every is not None:
            due = trained - self.train_seconds_at_ckpt >= self.time_every
        if due:
            self._pause()
            self._checkpoint(steps)
            self._resume()
        return self.stop_reason is None

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint(self, steps: int) -> None:
        """Export the agent as a program, store it with its training episodes, score it on dev,
        and confirm it on holdout when it is a new best."""
        self.checkpoints += 1
        source = self._export(steps)
        pid = self._store_checkpoint(source, steps)
        dev = self._score_dev(pid, source, steps)
        if self.progress:
            self.progress(
                {
                    "checkpoint": self.checkpoints,
                    "env_steps": steps,
                    "seconds": self.train_seconds,
                    "wall": self.wall(),
                    "dev": dev.mean,
                    "holdout": self.champion["holdout"] if self.champion else None,
                }
            )
        self._maybe_promote(pid, source, dev, steps)
        if self.champion and self.target is not None and self.champion["holdout"] >= self.target:
            self.stop_reason = f"target reached: holdout {self.champion['holdout']:.2f} >= {self.target:g}"

    def _export(self, steps: int) -> str:
        """The agent's network as a numpy program, checked to act as the network does."""
        from scriptrl.baselines.export import net_spec, program_source, sample_observations, verify

        spec = net_spec(self.model, self.vecnorm)
        algo = self.entry.algo.upper()
        notes = [
            f"Checkpoint {self.checkpoints} after {steps:,} training env steps ({self.train_seconds:.1f} s),",
            f"seed {self.config['seed']}; hyperparameters: {self.entry.source}.",
            f"Stable-Baselines3 {self.config['versions']['stable_baselines3']}, "
            f"torch {self.config['versions']['torch']}.",
            "",
        ]
        source = program_source(
            spec, f"{algo} policy for {self.renv.label()}, exported by `scriptrl baseline`.", notes
        )
        if len(source.encode()) > MAX_SOURCE_BYTES:
            raise UserError(
                f"the {algo} network is too large to export as a program ({len(source) / 1e6:.1f} MB)"
            )
        probe = self.renv.make()
        try:
            self.verified = verify(
                source, self.model, self.vecnorm, sample_observations(probe, 100, seed=steps)
            )
        finally:
            probe.close()
        return source

    def _store_checkpoint(self, source: str, steps: int) -> int:
        """The checkpoint as a program, with the training episodes since the last one, in one step."""
        from scriptrl.program import Program

        prog = Program(source)
        parents = [self.last_pid] if self.last_pid is not None else []
        with self.store.transaction():
            pid = self.store.add_program(
                source,
                prog.normalized_hash,
                parents,
                self.entry.algo,
                "checkpoint",
                0.0,
                None,
                self.checkpoints,
                note=f"{steps:,} training steps, {self.train_seconds:.1f} s",
            )
            train_steps = steps - self.steps_at_ckpt
            self.store.add_evaluation(
                pid,
                "train",
                "train",
                _train_row(
                    self.returns, train_steps, self.train_seconds - self.train_seconds_at_ckpt, self.renv
                ),
            )
        self.sources[pid] = source
        self.last_pid = pid
        self.returns = []
        self.steps_at_ckpt, self.train_seconds_at_ckpt = steps, self.train_seconds
        return pid

    def _score_dev(self, pid: int, source: str, steps: int):
        """The checkpoint's dev score, stored with its point on the curve."""
        from scriptrl.evaluate import evaluate

        dev = evaluate(source, self.renv, list(range(*self.config["dev"])), self.eval_config, split="dev")
        with self.store.transaction():
            self.store.add_evaluation(pid, "dev", "curve", dev)
            self.store.set_program_status(pid, "evaluated" if not dev.failures else "failed")
            self.store.add_event(
                "curve",
                {
                    "program": pid,
                    "env_steps": steps,
                    "seconds": round(self.train_seconds, 3),
                    "wall": round(self.wall(), 3),
                    "dev": dev.mean,
                    "dev_ci95": list(dev.ci95),
                },
            )
        if dev.failures:  # an export or sandbox problem, not a weak policy: say so loudly
            raise UserError(f"checkpoint {pid} failed in the evaluator: {dev.failures[0]['reason']}")
        return dev

    def _maybe_promote(self, pid: int, source: str, dev, steps: int) -> None:
        """The search's rule (scriptrl.search.loop.Search._maybe_promote), so both confirm alike."""
        reached = (
            self.champion is not None and self.target is not None and self.champion["holdout"] >= self.target
        )
        if dev.mean < self.best_dev or (dev.mean == self.best_dev and reached):
            return
        self.best_dev, self.best_dev_id, self.best_dev_source, self.best_dev_result = (
            dev.mean,
            pid,
            source,
            dev,
        )
        step = max(1e-9, 0.05 * abs(self.target)) if self.target is not None else 1e-9
        confirmed_dev = self.champion["dev"] if self.champion else float("-inf")
        at_target = self.target is not None and dev.mean >= self.target
        if at_target or dev.mean >= confirmed_dev + step:
            self._confirm(pid, source, dev.mean, steps)

    def _split_eval(self, pid: int, source: str, split: str):
        from scriptrl.evaluate import evaluate

        res = evaluate(source, self.renv, list(range(*self.config[split])), self.eval_config, split=split)
        self.store.add_evaluation(pid, split, split, res)
        return res

    def _confirm(self, pid: int, source: str, dev_mean: float, steps: int) -> None:
        holdout = self._split_eval(pid, source, "holdout")
        if self.champion is None or holdout.mean >= self.champion["holdout"]:
            self.champion = {
                "id": pid,
                "dev": dev_mean,
                "holdout": holdout.mean,
                "ci95": list(holdout.ci95),
                "env_steps": steps,
                "seconds": round(self.train_seconds, 3),
            }
            self.store.write_best_policy(source, self._header())
            self.store.add_event(
                "promotion", {"iteration": self.checkpoints, **self.champion, "wall": round(self.wall(), 3)}
            )

    def _header(self, audit=None) -> dict:
        from scriptrl.store import policy_header

        c = self.champion or {}
        method = {
            "method": (
                f"{self.entry.algo.upper()} (Stable-Baselines3), {c.get('env_steps', 0):,} training steps"
            ),
            "hyperparameters": self.entry.source,
        }
        return policy_header(
            self.renv,
            c,
            self.config,
            audit.mean if audit is not None else None,
            f"scriptrl baseline (run folder: {self.store.run_dir})",
            method,
        )

    def _finish(self) -> None:
        best, source = self.best_dev_id, self.best_dev_source  # set together
        if best is not None and source is not None and (self.champion is None or self.champion["id"] != best):
            self._confirm(best, source, self.best_dev, self._steps_of(best))
        if self.champion is not None:
            pid = self.champion["id"]
            audit = self._split_eval(pid, self.sources[pid], "audit")
            self.champion["audit"] = audit.mean
            self.store.write_best_policy(self.sources[pid], self._header(audit))
        self.store.add_event(
            "stop",
            {
                "reason": self.stop_reason,
                "iteration": self.checkpoints,
                "env_steps": int(self.model.num_timesteps),
                "seconds": round(self.train_seconds, 3),
                "wall": round(self.wall(), 3),
            },
        )

    def _steps_of(self, pid: int) -> int:
        for e in self.store.events("curve"):
            if e["data"].get("program") == pid:
                return int(e["data"]["env_steps"])
        return int(self.model.num_timesteps)

    def result(self):
        from scriptrl.search import TrainResult

        totals = self.store.totals()
        evals = self.store.evaluations()
        c = self.champion or {}
        return TrainResult(
            run_dir=Path(self.store.run_dir),
            env_id=self.renv.id,
            best_program_id=c.get("id"),
            best_source=self.sources.get(c["id"]) if c else None,
            best_dev=c.get("dev"),
            best_holdout=c.get("holdout"),
            best_audit=c.get("audit"),
            env_steps=int(self.model.num_timesteps),
            eval_env_steps=sum(e["env_steps"] or 0 for e in evals if e["stage"] in ("holdout", "audit")),
            seconds=round(self.wall(), 3),
            iterations=self.checkpoints,
            stop_reason=self.stop_reason or "",
            calls=int(totals.get("calls", 0)),
            model_calls=0,
            prompt_tokens=0,
            completion_tokens=0,
            cost_usd=0.0,
        )


def _train_row(returns: list[float], env_steps: int, seconds: float, renv) -> dict[str, Any]:
    """The training episodes since the last checkpoint, as an evaluation row (no fixed seeds)."""
    from scriptrl.evaluate import confidence_interval

    row: dict[str, Any] = {
        "returns": returns,
        "env_steps": env_steps,
        "seconds": seconds,
        "seeds": [],
        "env_id": renv.id,
        "gymnasium_version": renv.gymnasium_version,
        "notice": "training episodes (exploration on), seeded by the agent, not a seed split",
    }
    if returns:
        lo, hi = confidence_interval(returns)
        row.update(
            mean=statistics.fmean(returns),
            std=statistics.pstdev(returns),
            ci_lo=lo,
            ci_hi=hi,
            median=statistics.median(returns),
            min=min(returns),
            max=max(returns),
        )
    return row
