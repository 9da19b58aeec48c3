"""``scriptrl.train``: the API the ``scriptrl train`` command calls.

>>> run = scriptrl.train("CartPole-v1", max_seconds=120)
>>> run.best_holdout, run.best_source
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scriptrl.errors import UserError
from scriptrl.search.config import TrainConfig

if TYPE_CHECKING:
    from scriptrl.search.portfolio import Portfolio


@dataclass
class TrainResult:
    run_dir: Path
    env_id: str
    best_program_id: int | None
    best_source: str | None
    best_dev: float | None
    best_holdout: float | None
    best_audit: float | None
    env_steps: int  # search steps: races, confirmations and tuning, on the training stream
    eval_env_steps: int  # holdout and audit evaluations (confirming, never selecting)
    seconds: float
    iterations: int
    stop_reason: str
    calls: int  # every generator call, offline ones and constant tuning included
    model_calls: int  # requests to a language model (failed and repaired ones included)
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    # the champion's holdout success rate and Wilson 95 % interval (None: no success defined)
    best_success: float | None = None
    best_success_ci95: list[float] | None = None
    # with a model lane (search/model_lane.py): model programs that joined the population, and
    # whether the champion is one of them or descends from one (None: no model lane)
    model_programs_joined: int | None = None
    model_champion: bool | None = None
    model_ancestor: bool | None = None

    @property
    def best_policy(self) -> Path:
        return self.run_dir / "best_policy.py"

    def summary(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "best_source"}
        d["run_dir"] = str(self.run_dir)
        d["best_policy"] = str(self.best_policy) if self.best_policy.exists() else None
        return d


def default_run_dir(env: str, root: str | Path = "runs") -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in env)
    return Path(root) / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}"


def build_portfolio(cfg: TrainConfig) -> Portfolio:
    from scriptrl.generators.base import Generator
    from scriptrl.generators.offline import OfflineMutator
    from scriptrl.search.portfolio import Portfolio

    if cfg.generator in ("llm", "auto"):
        try:
            from scriptrl.generators.llm import build_llm_generators
        except ImportError:
            if cfg.generator == "llm":
                raise UserError(
                    "the llm generator is not available in this version (use --generator offline)"
                ) from None
            return Portfolio([OfflineMutator()])
        try:
            llm = build_llm_generators(cfg)
        except UserError as e:
            if cfg.generator == "llm":
                raise
            import sys

            sys.stderr.write(
                f"scriptrl: no language model ({e}); --generator auto goes on with the offline generator\n"
            )
            return Portfolio([OfflineMutator()])
        generators: list[Generator] = [*llm] if cfg.generator == "llm" else [*llm, OfflineMutator()]
        return Portfolio(generators)
    return Portfolio([OfflineMutator()])


def build_executor(cfg: TrainConfig, workers: int | None = None):
    """The executor a config asks for. Ray's default is every CPU of the cluster, not of this
    machine, so only an explicit ``workers`` is passed on to it."""
    if cfg.executor == "ray":
        from scriptrl.evaluate.executors_ray import RayExecutor

        return RayExecutor(workers, cfg.ray_address, config=_eval_config(cfg))
    from scriptrl.evaluate.executors import LocalExecutor

    return LocalExecutor(cfg.workers, config=_eval_config(cfg))


def _eval_config(cfg: TrainConfig):
    from scriptrl.evaluate import EvalConfig

    return EvalConfig(allow_module_state=cfg.allow_module_state)


def train(
    env: str | None = None, *, resume: str | Path | None = None, progress=None, executor=None, **options: Any
) -> TrainResult:
    """Run (or resume) a search and return its best program and scores.

    ``executor`` is an executor object, or the name of one ("local" or "ray", stored with
    the run like any option) for the command line and for callers who need no custom one.
    """
    from scriptrl.search.loop import Search
    from scriptrl.store import RunStore

    if isinstance(executor, str):
        options["executor"], executor = executor, None
    if resume is not None:
        store = RunStore.open(resume)
        cfg = TrainConfig.from_dict(store.config)
        overrides = {k: v for k, v in options.items() if k.startswith("max_") and v is not None}
        for k, v in overrides.items():
            setattr(cfg, k, v)
        if "workers" in options and options["workers"]:
            cfg.workers = options["workers"]
        for key in ("executor", "ray_address"):  # where evaluations run never changes their results
            if options.get(key):
                setattr(cfg, key, options[key])
        cfg.check()
    else:
        if env is None:
            raise UserError("train needs an environment id (or --resume RUN_DIR)")
        cfg = TrainConfig(env=env, **{k: v for k, v in options.items() if v is not None}).check()
        from scriptrl.search.loop import success_env

        success_env(cfg)  # fail on a bad id or success rule before creating a run folder
        if cfg.init:
            from scriptrl.program import Program

            Program.from_file(cfg.init).validate(allow_module_state=cfg.allow_module_state)
        cfg.run_dir = str(Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg.env))
        store = RunStore.create(cfg.run_dir, cfg.to_dict())
    own_executor = executor is None
    try:
        executor = executor or build_executor(cfg, options.get("workers"))
    except BaseException:  # e.g. an unreachable Ray cluster: leave the new run resumable
        store.close()
        raise
    portfolio = None
    try:
        portfolio = build_portfolio(cfg)
        search = Search(cfg, store, executor, portfolio, progress=progress)
        try:
            search.run()
        except KeyboardInterrupt:
            store.add_event(
                "stop",
                {"status": "interrupted", "reason": f"interrupted; continue with --resume {cfg.run_dir}"},
            )
            raise
        return _result(search)
    finally:
        for gen in portfolio.generators.values() if portfolio else ():
            gen.close()  # an embedded model server stops with its run
        if own_executor:
            executor.close()
        store.close()


def _result(search) -> TrainResult:
    store = search.store
    totals = store.totals()
    champ = search.champion
    pid = champ.id if champ else None
    return TrainResult(
        run_dir=Path(store.run_dir),
        env_id=search.env.id,
        best_program_id=pid,
        best_source=store.program(pid)["source"] if pid is not None else None,
        best_dev=champ.dev if champ else None,
        best_holdout=champ.holdout if champ else None,
        best_audit=champ.audit if champ else None,
        best_success=champ.success if champ else None,
        best_success_ci95=champ.success_ci95 if champ else None,
        env_steps=search.search_env_steps(),
        eval_env_steps=store.env_steps(("holdout", "audit")),
        seconds=round(search.seconds(), 3),
        iterations=search.iteration,
        stop_reason=search.stop_reason or "",
        calls=int(totals.get("calls", 0)),
        model_calls=int(totals.get("model_calls", 0)),
        prompt_tokens=int(totals.get("prompt_tokens", 0)),
        completion_tokens=int(totals.get("completion_tokens", 0)),
        cost_usd=float(totals.get("cost_usd", 0.0)),
        **_model_share(store),
    )


def _model_share(store) -> dict:
    """What the model lane contributed, from its last summary event (none without a lane)."""
    events = store.events("model_lane")
    if not events:
        return {}
    data = events[-1]["data"]
    return {
        "model_programs_joined": data.get("programs_joined"),
        "model_champion": data.get("champion_by_model"),
        "model_ancestor": data.get("champion_descends_from_model"),
    }
