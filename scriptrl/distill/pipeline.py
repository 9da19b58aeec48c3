"""``scriptrl distill RUN_DIR``: a baseline run's network turned into a readable tree program.

The steps: read the run's champion network (``teacher``, parsed, never executed), imitate it
with DAgger on the states teacher and student visit (``dagger``, VIPER-weighted), tune the
tree's numbers for return with the search's CMA-ES on fresh training-stream episodes
(``tune``), write it as a program with named observations (``render``), and score that
program with the sandboxed evaluator on the holdout seeds, beside the teacher's score on the
same seeds by the same evaluator. Nothing selects on holdout: DAgger and tuning only see the
training stream. Written to ``RUN_DIR/distill/``: ``policy.py`` and ``summary.json``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scriptrl import seeds
from scriptrl.distill.dagger import DaggerSettings, dagger
from scriptrl.distill.render import action_names, code_lines, observation_names, render_program
from scriptrl.distill.rollouts import EnvPool, play
from scriptrl.distill.teacher import Teacher, load_teacher
from scriptrl.distill.tune import rounded, tune_tree
from scriptrl.errors import UserError


@dataclass(frozen=True)
class DistillSettings:
    dagger: DaggerSettings = DaggerSettings()
    tune_evaluations: int = 800  # CMA-ES candidate programs (0: no tuning)
    tune_episodes: int = 10  # fresh episodes per generation
    confirm_episodes: int = 50  # fresh episodes the tuned and untuned trees race on
    max_seconds: float = 900.0  # DAgger and tuning stop starting new work after this
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dagger.iterations < 1 or self.dagger.episodes < 1 or self.dagger.score_episodes < 1:
            raise UserError("distill needs at least 1 iteration and 1 episode per iteration")
        if self.dagger.weighting not in ("viper", "uniform"):
            raise UserError(f"unknown --weighting '{self.dagger.weighting}' (use viper or uniform)")
        if self.dagger.tree.max_depth < 1 or not 1 <= self.dagger.tree.max_terms <= 8:
            raise UserError("--max-depth must be at least 1 and --max-terms between 1 and 8")
        if self.tune_evaluations < 0 or self.tune_episodes < 1 or self.confirm_episodes < 1:
            raise UserError("--tune-evaluations must be >= 0 and the episode counts at least 1")
        if not self.max_seconds > 0:
            raise UserError(f"--max-seconds must be positive (got {self.max_seconds})")


@dataclass
class Score:
    mean: float
    ci95: list[float]
    episodes: int
    seeds: str
    failures: int = 0


@dataclass
class DistillResult:
    program: Path
    summary_path: Path
    source: str
    env: str
    teacher: str
    teacher_holdout: Score
    student_holdout: Score
    lines: int  # the whole file
    code_lines: int  # without docstring, blank lines and comments
    leaves: int
    depth: int
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["program"], out["summary_path"] = str(self.program), str(self.summary_path)
        out.pop("source")
        return out


def distill_run(
    run_dir: str | Path,
    output: str | Path | None = None,
    settings: DistillSettings = DistillSettings(),
    progress: Callable[[str], None] | None = None,
) -> DistillResult:
    """Distill the baseline run at ``run_dir``; see the module docstring for the steps."""
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    deadline = started + settings.max_seconds
    run_dir = Path(run_dir).expanduser()
    renv, teacher, teacher_source, stored = _load(run_dir)
    out_dir = Path(output).expanduser() if output else run_dir / "distill"
    holdout = seeds.SeedSplits().seeds("holdout")
    pool = EnvPool(renv)
    try:
        say(f"teacher {teacher.label}; DAgger, {settings.dagger.iterations} iterations")
        dag = dagger(teacher, pool, settings.dagger, deadline, stream_start=settings.seed * 1_000_000)
        for r in dag.iterations:
            say(
                f"  iteration {r.iteration}: {r.samples:,} states, {r.leaves} leaves, "
                f"agreement {r.agreement:.3f}, training-stream mean {r.score:.2f}"
            )
        tuned = tune_tree(
            dag.tree,
            pool,
            seed=settings.seed,
            stream_start=dag.stream_used,
            episodes_per_generation=settings.tune_episodes,
            max_evaluations=settings.tune_evaluations,
            confirm_episodes=settings.confirm_episodes,
            deadline=deadline,
            progress=say,
        )
        say(
            f"tuning: {tuned.evaluations} candidates ({tuned.stopped}); confirmation mean "
            f"{tuned.before:.2f} untuned, {tuned.after:.2f} kept"
        )
        tree = tuned.tree if settings.tune_evaluations > 0 else rounded(dag.tree)
        in_process = float(play(pool, [tree.predict], holdout).returns.mean())
    finally:
        pool.close()
    desc = renv.description
    source = render_program(
        tree,
        observation_names(desc, teacher.n_obs),
        action_names(desc, teacher.n_actions),
        _docstring(renv, teacher, tree),
    )
    student = _score_program(source, renv, holdout, "the distilled program")
    teacher_score = stored or _score_program(teacher_source, renv, holdout, "the teacher")
    result = DistillResult(
        program=out_dir / "policy.py",
        summary_path=out_dir / "summary.json",
        source=source,
        env=renv.label(),
        teacher=teacher.label,
        teacher_holdout=teacher_score,
        student_holdout=student,
        lines=len(source.splitlines()),
        code_lines=code_lines(source),
        leaves=tree.leaves(),
        depth=tree.depth(),
        details={
            "dagger": [asdict(r) for r in dag.iterations],
            "dagger_best_training_mean": dag.score,
            "tuning": {k: v for k, v in asdict(tuned).items() if k != "tree"},
            "in_process_holdout_mean": in_process,
            "training_episodes": dag.episodes + tuned.episodes,
            "training_env_steps": dag.env_steps + tuned.env_steps,
            "seconds": round(time.monotonic() - started, 1),
            "settings": asdict(settings),
        },
    )
    _write(result)
    return result


def _load(run_dir: Path) -> tuple[Any, Teacher, str, Score | None]:
    """The run's environment, its champion network as a teacher, and its stored holdout score."""
    from scriptrl.envs import resolve_env
    from scriptrl.glassbox.export import champion_id
    from scriptrl.store import RunStore

    with RunStore.open(run_dir) as store:
        cfg = store.config
        if cfg.get("kind") != "baseline":
            raise UserError(
                f"{run_dir} is not a baseline run "
                "(distill needs a network: make one with `scriptrl baseline ENV`)"
            )
        pid = champion_id(store)
        if pid is None:
            raise UserError(f"{run_dir} has no scored checkpoint yet (let `scriptrl baseline` finish one)")
        source = store.program(pid)["source"]
        row = store.best_evaluation(pid, "holdout")
    renv = resolve_env(cfg["env"])
    teacher = load_teacher(source, f"{str(cfg.get('algo', 'network')).upper()} program #{pid} of {run_dir}")
    want = seeds.SeedSplits().seeds("holdout")
    stored = None
    if row and row.get("mean") is not None and list(row.get("seeds") or []) == want:
        stored = Score(
            float(row["mean"]), [row["ci_lo"], row["ci_hi"]], len(want), seeds.SeedSplits().label("holdout")
        )
    return renv, teacher, source, stored


def _score_program(source: str, renv, holdout: list[int], what: str) -> Score:
    """The sandboxed evaluator's holdout score (the generated program never runs in this process)."""
    from scriptrl.evaluate import EvalConfig, evaluate
    from scriptrl.program import check_source

    problems = check_source(source)
    if problems:
        raise UserError(f"{what} does not pass scriptrl's checks: {problems[0]}")
    res = evaluate(source, renv, holdout, EvalConfig(), split="holdout")
    if res.failures:
        raise UserError(f"{what} failed in the evaluator: {res.failures[0]['reason']}")
    return Score(
        res.mean, list(res.ci95), len(holdout), seeds.SeedSplits().label("holdout"), len(res.failures)
    )


def _docstring(renv, teacher: Teacher, tree) -> str:
    label = "".join(ch for ch in teacher.label if ch.isprintable() and ch not in '\\"')
    return (
        f"Oblique decision tree for {renv.label()}, distilled by `scriptrl distill` from\n"
        f"{label}\n"
        "(DAgger with VIPER weighting, then CMA-ES on its numbers; "
        f"{tree.leaves()} leaves, depth {tree.depth()})."
    )


def _write(result: DistillResult) -> None:
    from scriptrl.store import write_atomic

    try:
        result.program.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(result.program, result.source)
        write_atomic(result.summary_path, json.dumps(_finite(result.summary()), indent=2) + "\n")
    except OSError as e:
        raise UserError(
            f"cannot write {result.program.parent}: {e.strerror} (choose another -o folder)"
        ) from None


def _finite(obj: Any) -> Any:
    """Strict JSON: NaN and infinities (an untuned tree has no 'before') become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
