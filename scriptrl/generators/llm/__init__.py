"""Language models as program generators: served APIs, Anthropic, a command, or an embedded model.

``build_llm_generators(cfg)`` is what ``scriptrl train --generator llm|auto`` calls. With
no API configured it fetches (once, verified) a local model and starts llama.cpp's server
in a child process (it loads while the search runs); with ``--base-url`` it talks to any
OpenAI-compatible server with the same client. See ``settings`` for the configuration,
``generator`` for what happens around each call, and ``scriptrl/generators/prompts/``
for the prompts themselves.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

from scriptrl.errors import UserError
from scriptrl.generators.llm.backends import (
    AnthropicBackend,
    Backend,
    CommandBackend,
    OpenAIBackend,
    Redactor,
)
from scriptrl.generators.llm.generator import LLMGenerator
from scriptrl.generators.llm.pricing import PriceTable
from scriptrl.generators.llm.settings import LLMSettings, from_train_config

__all__ = ["LLMGenerator", "LLMSettings", "build_generator", "build_llm_generators"]


def build_llm_generators(cfg) -> list[LLMGenerator]:
    """The model-backed generators for a run (one ``LLMGenerator`` doing init, mutate and crossover)."""
    return [build_generator(from_train_config(cfg))]


def build_generator(s: LLMSettings, say=None) -> LLMGenerator:
    say = say or (lambda msg: sys.stderr.write(msg + "\n"))
    if s.backend == "embedded":
        return _embedded(s, say)
    key = s.api_key()
    redact = Redactor(key)
    prices = PriceTable.load(s.prices)
    if s.backend == "openai":
        # decide() has named the model (the SDK refuses a call without one)
        backend: Backend = OpenAIBackend(s.model, s.base_url, key, s.timeout, redact)  # type: ignore[arg-type]
    elif s.backend == "anthropic":
        if key is None:
            raise UserError(f"the anthropic backend needs a key in ${s.key_env}")
        backend = AnthropicBackend(s.model, s.base_url, key, s.timeout, redact)  # type: ignore[arg-type]
    else:
        backend = CommandBackend(s.command or [], s.timeout, redact, s.model)  # None: the bounded default
    label = cast(str, s.model or getattr(backend, "model", s.backend))  # every backend names its model
    return LLMGenerator(backend, s, label, prices=prices, redact=redact, say=say)


def _embedded(s: LLMSettings, say) -> LLMGenerator:
    from scriptrl.generators.llm.model_process import LazyBackend, ModelProcess
    from scriptrl.generators.llm.weights import ModelError, pull, spec_for

    name = s.model or ""
    spec = spec_for(name)
    if spec is not None:
        try:
            path = pull(spec.name, say=say)
        except ModelError as e:
            raise UserError(
                f"{e}. Without it, serve a model and pass --base-url URL --model NAME, "
                "or use --generator offline"
            ) from None
        alias = spec.name
    else:  # a GGUF file the user chose: theirs to vouch for, so no checksum to compare
        path = Path(name).expanduser()
        if not path.is_file():
            raise UserError(
                f"model file not found: {path} (or name a local model: see `scriptrl model list`)"
            )
        alias = path.stem
    # The model loads in a child process while the search already evaluates; the first request
    # waits for it in the model lane's thread (generators/llm/model_process.py).
    server = ModelProcess(path, alias, threads=s.threads, n_ctx=s.n_ctx, seed=s.seed, say=say).start()
    backend = LazyBackend(server, s.timeout)
    return LLMGenerator(backend, s, f"local:{alias}", free=True, server=server, say=say)
