"""How one evaluation runs: timeouts, concurrency, the sandbox limits; the defaults are the safe ones."""

from __future__ import annotations

from dataclasses import dataclass, field

from scriptrl.evaluate.stall import StallRule
from scriptrl.sandbox.client import SandboxLimits


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
    families: bool = True  # variants of one program on the same episodes share a worker (``family``)
