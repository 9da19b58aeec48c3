"""Everything a training run is configured by, stored with the run so it can resume."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from scriptrl import seeds
from scriptrl.errors import UserError


@dataclass
class TrainConfig:
    env: str
    generator: str = "offline"  # offline | llm | auto
    run_dir: str | None = None
    init: str | None = None  # a person's own program to start from
    # make-time options of the environment (scriptrl/envs/options.py), stored so every worker
    # and a resumed run build the same environment
    env_options: dict = field(default_factory=dict)
    allow_module_state: bool = False  # accept (with a warning) programs keeping state at module level
    target: float | None = None  # default: the solved threshold (none when only target_success is given)
    # episode success (scriptrl/envs/success_rule.py): an expression replacing the description's,
    # and a holdout success rate in (0, 1] the champion must reach to stop the search
    success: str | None = None
    target_success: float | None = None
    max_iterations: int | None = None
    max_env_steps: int | None = None  # search steps (cheap, full dev and tuning evaluations)
    max_seconds: float | None = None
    max_cost: float | None = None
    seed: int = 0
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    executor: str = "local"  # local (process pool) | ray (a Ray cluster; scriptrl[ray])
    ray_address: str | None = None  # host:port of a running Ray head; None: RAY_ADDRESS or a private one
    islands: int = 4
    island_capacity: int = 6
    children_per_iteration: int = 8
    initial_programs: int = 16
    cheap_episodes: int = 3  # fresh episodes every candidate of a round plays before racing on
    race_chunk: int = 7  # further episodes per racing step (each step is a program start: few, large ones)
    race_episodes: int = 10  # fresh episodes a round draws: the most a candidate plays in it
    confirm_episodes: int = 30  # fresh episodes behind a leader before it may earn holdout
    temperature: str | float | None = "adaptive"
    tune_every: int = 1  # 0: no constant tuning; otherwise tuning rounds follow their wins per step
    tune_generations: int = 1  # CMA-ES generations per tuning round (its output races at once)
    tune_popsize_factor: float = 1.0  # CMA-ES population: pycma's default for the dimension times this
    # the dense lane (search/dense_rounds.py): its population over pycma's default; 0: no dense
    # lane. On by default since rounds are credited by how far they move the leader: paired
    # 300 s runs (benchmarks/RESULTS.md, 2026-12-03 afternoon) LunarLander-v3 seeds 0-2
    # -49.2 / -11.5 / -103.1 with it against -56.2 / -124.1 / -137.4 without it, Acrobot-v1
    # seed 0 -81.8 against -86.4, CartPole-v1 --target 500 median steps equal (38,167).
    dense_popsize_factor: float = 4.0
    # what EffortSplit credits a round with: "leader" (the gain in the population's best mean it
    # brought, after confirmation) or "race" (its race winners' paired gains over their own
    # opponents, which children beating weak parents earn without moving the leader); None:
    # "leader" with the dense lane, "race" without it
    effort_credit: str | None = None
    stall_rounds: int | None = None  # stop after this many rounds without a win (default: never)
    migrate_every: int = 5
    dev: tuple[int, int] = seeds.DEV
    holdout: tuple[int, int] = seeds.HOLDOUT
    audit: tuple[int, int] = seeds.AUDIT
    imports: tuple[str, ...] = ()
    model: str | None = None
    base_url: str | None = None
    task: str | None = None
    api_key_env: str | None = None  # the NAME of the variable holding the key, never the key
    llm_timeout: float | None = None
    llm_concurrency: int | None = None
    llm_max_tokens: int | None = None
    llm_round_seconds: float | None = None  # most seconds a slow model writes per round (default 60)
    llm_feedback: bool = True  # traced worst episodes, lineage and inspirations in a model's prompt
    # a slow model writes beside the search (search/model_lane.py); False: in rounds (search/pacing.py)
    model_lane: bool = True
    # False (--no-evolution): the first programs only, then every round tunes their constants; no
    # generator writes a child after the first programs (an ablation: does evolution help?)
    evolve: bool = True

    def check(self) -> TrainConfig:
        if self.generator not in ("offline", "llm", "auto"):
            raise UserError(f"unknown --generator '{self.generator}' (use offline, llm or auto)")
        if self.executor not in ("local", "ray"):
            raise UserError(f"unknown --executor '{self.executor}' (use local or ray)")
        if self.ray_address and self.executor != "ray":
            raise UserError("--ray-address needs --executor ray")
        for name in (
            "max_iterations",
            "max_env_steps",
            "workers",
            "islands",
            "island_capacity",
            "children_per_iteration",
            "cheap_episodes",
            "race_chunk",
            "race_episodes",
            "confirm_episodes",
            "tune_generations",
            "stall_rounds",
        ):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1 (got {v})")
        for name in ("max_seconds", "max_cost", "llm_round_seconds"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive (got {v})")
        if self.api_key_env is not None and not self.api_key_env.replace("_", "").isalnum():
            raise UserError(
                "--api-key-env takes the NAME of an environment variable, e.g. OPENROUTER_API_KEY, "
                "never the key itself"
            )
        if self.target_success is not None and not 0 < self.target_success <= 1:
            raise UserError(
                f"--target-success is a success rate in (0, 1], e.g. 0.95 (got {self.target_success})"
            )
        self.splits()  # disjoint, non-empty ranges
        if self.cheap_episodes > self.race_episodes:
            raise UserError("--cheap-episodes cannot exceed --race-episodes (the episodes a round draws)")
        if self.tune_every < 0 or self.tune_popsize_factor <= 0:
            raise UserError("--tune-every must be 0 or more and --tune-popsize-factor positive")
        if self.effort_credit not in (None, "leader", "race"):
            raise UserError(f"effort_credit must be 'leader' or 'race' (got {self.effort_credit!r})")
        if not self.evolve and not self.tune_every:
            raise UserError("--no-evolution tunes the first programs' constants: it needs tune_every >= 1")
        if self.dense_popsize_factor < 0:
            raise UserError("dense_popsize_factor must be 0 (no dense lane) or positive, e.g. 4.0")
        return self

    def splits(self) -> seeds.SeedSplits:
        return seeds.SeedSplits(dev=self.dev, holdout=self.holdout, audit=self.audit)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        # a run stored before the dense lane existed resumes as it ran: without it
        known.setdefault("dense_popsize_factor", 0.0)
        for k in ("dev", "holdout", "audit", "imports"):
            if k in known and known[k] is not None:
                known[k] = tuple(known[k])
        return cls(**known)
