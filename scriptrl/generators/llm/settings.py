"""Which model a run talks to, and how: from the train options and an optional config file.

``--model NAME`` alone picks one of scriptrl's local models (served by the embedded
llama.cpp server), ``--base-url URL --model NAME`` a served one through the OpenAI-compatible
client, and ``--model FILE.toml`` (or ``SCRIPTRL_LLM_CONFIG=FILE.toml``) a config file
holding any of the fields of ``LLMSettings``, either at the top level or under ``[llm]``:

    backend = "openai"                 # openai | anthropic | command | embedded
    base_url = "https://openrouter.ai/api/v1"
    model = "deepseek/deepseek-chat"
    api_key_env = "OPENROUTER_API_KEY" # the NAME of the variable; the key is never stored
    timeout = 60
    concurrency = 4

The key itself is read from the environment when the client is built and is kept nowhere
else: not in the settings, not in the run's stored config, not in any message.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from scriptrl.errors import UserError
from scriptrl.generators.llm.weights import DEFAULT_MODEL, MODELS, spec_for

BACKENDS = ("embedded", "openai", "anthropic", "command")
EDIT_MODES = ("auto", "full", "edits")


@dataclass
class LLMSettings:
    backend: str | None = None  # None: decided from the other fields (see ``decide``)
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None  # default: OPENAI_API_KEY, or ANTHROPIC_API_KEY for anthropic
    timeout: float | None = None  # seconds for one request; default 120, or 900 for the local model
    max_tokens: int = 500
    temperature_range: tuple[float, float] = (0.2, 1.0)  # the search's 0 .. 1.5 maps onto this
    concurrency: int = 1  # requests in flight when several programs are wanted at once
    retries: int = 4  # per call, on 429, 5xx, timeouts and connection errors
    backoff: float = 1.0  # first retry waits about this long, doubling up to backoff_max
    backoff_max: float = 30.0
    max_failures: int = 3  # calls in a row without a reply before the run goes on offline
    initial_programs: int = 4  # valid first programs to ask the model for
    edits: str = "auto"  # full programs, SEARCH/REPLACE edits, or edits for long parents
    repair: bool = True  # one repair round for a reply that is not a valid program
    command: str | list[str] | None = None  # the command backend's argv
    prices: str | None = None  # an extra price table (TOML), overriding the built-in one
    threads: int = 1  # embedded server threads
    n_ctx: int = 4096  # embedded server context window (tokens)
    feedback_tokens: int = 700  # traced episodes, lineage and inspirations in a mutation prompt (0: none)
    # From the train options, not the config file:
    task: str | None = field(default=None, repr=False)
    seed: int = 0
    max_cost: float | None = None
    max_seconds: float | None = None  # the run's time budget: no model call is started after it

    @property
    def key_env(self) -> str:
        if self.api_key_env:
            return self.api_key_env
        return "ANTHROPIC_API_KEY" if self.backend == "anthropic" else "OPENAI_API_KEY"

    def api_key(self) -> str | None:
        value = os.environ.get(self.key_env, "").strip()
        return value or None

    def model_temperature(self, search_temperature: float) -> float:
        lo, hi = self.temperature_range
        t = min(max(float(search_temperature), 0.0), 1.5)
        return round(lo + (hi - lo) * t / 1.5, 3)


_FILE_FIELDS = {f.name for f in fields(LLMSettings)} - {"task", "seed", "max_cost", "max_seconds"}


def load_file(path: str | Path) -> dict[str, Any]:
    p = Path(path).expanduser()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"LLM config file not found: {p}") from None
    except OSError as e:
        raise UserError(f"cannot read the LLM config file {p}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{p}: not valid TOML ({e})") from None
    data = data.get("llm", data)
    if "api_key" in {k.lower() for k in data}:  # a key in a file ends up in backups and repositories
        raise UserError(
            f"{p}: do not put the key in the file; set an environment variable and name it with api_key_env"
        )
    unknown = sorted(set(data) - _FILE_FIELDS)
    if unknown:
        raise UserError(
            f"{p}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(_FILE_FIELDS))})"
        )
    return data


def from_train_config(cfg) -> LLMSettings:
    """Settings for a run: the config file (if any), then explicit train options on top."""
    s = LLMSettings()
    model = getattr(cfg, "model", None)
    path = (
        model if isinstance(model, str) and model.endswith(".toml") else os.environ.get("SCRIPTRL_LLM_CONFIG")
    )
    values: dict[str, Any] = load_file(path) if path else {}
    extra = getattr(cfg, "llm", None)  # a future TrainConfig field with the same keys
    if isinstance(extra, dict):
        values.update({k: v for k, v in extra.items() if v is not None})
    for name, flag in (
        ("api_key_env", "api_key_env"),
        ("timeout", "llm_timeout"),
        ("concurrency", "llm_concurrency"),
        ("max_tokens", "llm_max_tokens"),
    ):
        v = getattr(cfg, flag, None)
        if v is not None:
            values[name] = v
    if model and not model.endswith(".toml"):
        values["model"] = model
    if getattr(cfg, "base_url", None):
        values["base_url"] = cfg.base_url
    for k, v in values.items():
        setattr(s, k, v)
    s.task = getattr(cfg, "task", None)
    s.seed = int(getattr(cfg, "seed", 0) or 0)
    s.max_cost = getattr(cfg, "max_cost", None)
    s.max_seconds = getattr(cfg, "max_seconds", None)
    return check(decide(s))


def decide(s: LLMSettings) -> LLMSettings:
    """No API configured means the embedded model; a name scriptrl does not know needs one."""
    if s.backend is None:
        if s.command:
            s.backend = "command"
        elif s.base_url:
            s.backend = "openai"
        elif s.model is None or spec_for(s.model) is not None or s.model.endswith(".gguf"):
            s.backend = "embedded"
        elif s.model.lower().startswith("claude") and os.environ.get(s.api_key_env or "ANTHROPIC_API_KEY"):
            s.backend = "anthropic"
        elif os.environ.get(s.api_key_env or "OPENAI_API_KEY"):
            s.backend = "openai"  # the SDK's default endpoint (api.openai.com, or OPENAI_BASE_URL)
        else:
            raise UserError(
                f"'{s.model}' is not a local model (local: {', '.join(MODELS)}) and no API is "
                "configured: pass --base-url URL for a served model, and set OPENAI_API_KEY "
                "(or the variable named by api_key_env) if it needs a key"
            )
    if s.backend == "embedded" and s.model is None:
        s.model = DEFAULT_MODEL
    if s.timeout is None:  # a local model under load is slow, never gone: a retry would only start over
        s.timeout = 900.0 if s.backend == "embedded" else 120.0
    return s


def check(s: LLMSettings) -> LLMSettings:
    if s.backend not in BACKENDS:
        raise UserError(f"unknown LLM backend '{s.backend}' (use {', '.join(BACKENDS)})")
    if s.edits not in EDIT_MODES:
        raise UserError(f"unknown edits mode '{s.edits}' (use {', '.join(EDIT_MODES)})")
    if s.backend in ("openai", "anthropic") and not s.model:
        raise UserError("a served model needs a name: pass --model NAME with --base-url")
    try:
        lo, hi = (float(x) for x in s.temperature_range)
    except (TypeError, ValueError):
        raise UserError("temperature_range must be two numbers, e.g. [0.2, 1.0]") from None
    if not 0 <= lo <= hi <= 2:
        raise UserError(f"temperature_range must satisfy 0 <= low <= high <= 2 (got {lo}, {hi})")
    s.temperature_range = (lo, hi)
    for name in (
        "timeout",
        "max_tokens",
        "concurrency",
        "max_failures",
        "initial_programs",
        "threads",
        "n_ctx",
    ):
        if float(getattr(s, name)) <= 0:
            raise UserError(f"LLM setting {name} must be positive (got {getattr(s, name)})")
    if s.feedback_tokens < 0:
        raise UserError(f"LLM setting feedback_tokens cannot be negative (got {s.feedback_tokens})")
    if s.retries < 0 or s.backoff < 0 or s.backoff_max < 0:
        raise UserError("LLM settings retries, backoff and backoff_max cannot be negative")
    return s
