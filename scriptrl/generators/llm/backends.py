"""How a prompt reaches a model and a reply comes back: one interface, three transports.

* ``OpenAIBackend``: the official ``openai`` SDK with a configurable ``base_url``. It is the
  one client for every served model (OpenAI, vLLM, Ollama, llama.cpp servers, OpenRouter-style
  gateways) and for scriptrl's own embedded server.
* ``AnthropicBackend``: Anthropic's official SDK, whose API is not chat-completions shaped.
* ``CommandBackend``: pipes the prompt to any command (a coding-agent CLI, a script) and reads
  the program back from its standard output.

Every backend raises ``CallError`` with a redacted message and whether retrying can help;
``with_retries`` turns that into exponential backoff with jitter, honouring ``Retry-After``.
The SDKs' own retries are switched off so that there is exactly one retry policy, visible in
one place and testable against a local fault server.
"""

from __future__ import annotations

import email.utils
import inspect
import json
import random
import re
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from scriptrl.generators.llm.prompts import Messages

#: Retry-After values beyond this are not waited for: the call fails and the run moves on.
MAX_RETRY_AFTER = 120.0
#: Seconds for one request when a backend is built without a timeout: no call waits forever.
DEFAULT_TIMEOUT = 120.0
_KEYLIKE = re.compile(r"\b(sk-(?:ant-|proj-|or-)?[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9_\-.=]{8,})")


class Backend(Protocol):
    """What the LLM generator needs of a model service: one completion per call."""

    def complete(
        self, messages: Messages, temperature: float, max_tokens: int, seed: int | None
    ) -> Reply: ...


@dataclass
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    model: str
    finish_reason: str | None = None
    cost_usd: float | None = None  # when the backend itself reports a price (agent CLIs do)


class CallError(Exception):
    """A call that produced no reply; its message is safe to store and show."""

    def __init__(
        self, message: str, retryable: bool, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class Redactor:
    """Removes secrets from any text before it is logged, stored or shown: the key itself,
    and anything shaped like a key or a bearer token (a server may echo a different one)."""

    def __init__(self, *secrets: str | None) -> None:
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return _KEYLIKE.sub("***", text)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniformly random up to the exponential step, so many clients hitting one
    rate limit do not retry in lockstep."""
    return rng.uniform(0.5, 1.0) * min(cap, base * 2**attempt)


def with_retries(
    fn: Callable[[], Reply],
    retries: int,
    base: float,
    cap: float,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[CallError, float], None] | None = None,
) -> Reply:
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return fn()
        except CallError as e:
            if not e.retryable or attempt >= retries:
                raise
            if e.retry_after is not None and e.retry_after > MAX_RETRY_AFTER:
                raise CallError(
                    f"{e} (server asks to wait {e.retry_after:.0f} s; not waiting)", False, status=e.status
                ) from None
            wait = e.retry_after if e.retry_after is not None else backoff_delay(attempt, base, cap, rng)
            if on_retry:
                on_retry(e, wait)
            sleep(wait)
            attempt += 1


def retry_after(headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
    except Exception:
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def bounded(timeout: float | None) -> float:
    """A request's timeout, never unbounded: None (or a non-positive value) is the default."""
    return float(timeout) if timeout is not None and timeout > 0 else DEFAULT_TIMEOUT


def _classify(e: Exception, sdk, redact: Redactor) -> CallError:
    """One SDK exception as a CallError. Both official SDKs share this exception layout."""
    if isinstance(e, CallError):
        return e
    if isinstance(e, sdk.APITimeoutError):
        return CallError("the request timed out", True)
    if isinstance(e, sdk.APIConnectionError):
        cause = e.__cause__ or e.__context__
        return CallError(
            redact(f"cannot connect ({type(cause).__name__ if cause else 'connection error'})"), True
        )
    if isinstance(e, sdk.APIStatusError):
        status = int(getattr(e, "status_code", 0) or 0)
        retryable = status in (408, 409, 425, 429) or status >= 500
        message = _status_message(e)
        return CallError(
            redact(f"HTTP {status}: {message}"),
            retryable,
            retry_after(getattr(getattr(e, "response", None), "headers", None)),
            status,
        )
    if isinstance(
        e, sdk.APIResponseValidationError | json.JSONDecodeError | ValueError | KeyError | TypeError
    ):
        return CallError(redact(f"malformed response ({type(e).__name__}: {str(e)[:160]})"), True)
    return CallError(redact(f"{type(e).__name__}: {str(e)[:200]}"), False)


def _status_message(e: Exception) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    return str(getattr(e, "message", None) or e)[:300]


class OpenAIBackend:
    """Chat completions through the official SDK, against any compatible ``base_url``.

    Servers differ at the edges, so a 400 naming a parameter this client sent
    (``max_tokens`` on newer OpenAI models, a fixed ``temperature``, ``seed`` on some
    gateways) is answered once by adapting the request and remembering that for the run."""

    def __init__(
        self, model: str, base_url: str | None, api_key: str | None, timeout: float | None, redact: Redactor
    ) -> None:
        import openai

        self.sdk = openai
        self.model = model
        self.redact = redact
        self.client = openai.OpenAI(
            api_key=api_key or "not-needed", base_url=base_url, timeout=bounded(timeout), max_retries=0
        )
        self.tokens_param = "max_tokens"
        self.send_temperature = True
        self.send_seed = True

    def complete(self, messages: Messages, temperature: float, max_tokens: int, seed: int | None) -> Reply:
        for _ in range(4):  # at most one adaptation per parameter
            kwargs: dict = {
                "model": self.model,
                "messages": messages.as_openai(),
                self.tokens_param: max_tokens,
            }
            if self.send_temperature:
                kwargs["temperature"] = temperature
            if self.send_seed and seed is not None:
                kwargs["seed"] = seed
            t0 = time.monotonic()
            try:
                resp = self.client.chat.completions.create(**kwargs)
            except Exception as e:
                err = _classify(e, self.sdk, self.redact)
                if err.status == 400 and self._adapt(str(err)):
                    continue
                raise err from None
            return self._reply(resp, time.monotonic() - t0)
        raise CallError("the server rejected every variant of the request", False)

    def _adapt(self, message: str) -> bool:
        text = message.lower()
        if "max_tokens" in text and self.tokens_param == "max_tokens":
            self.tokens_param = "max_completion_tokens"
            return True
        if "temperature" in text and self.send_temperature:
            self.send_temperature = False
            return True
        if "seed" in text and self.send_seed:
            self.send_seed = False
            return True
        return False

    def _reply(self, resp, latency: float) -> Reply:
        if isinstance(resp, str) or not hasattr(resp, "choices"):
            raise CallError("malformed response (not a chat completion)", True)
        try:
            choices = resp.choices or []
            text = (choices[0].message.content or "") if choices else ""
            finish = choices[0].finish_reason if choices else None
            usage = resp.usage
        except (AttributeError, IndexError, TypeError) as e:
            raise CallError(f"malformed response ({type(e).__name__})", True) from None
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0) if usage else 0
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0) if usage else 0
        return Reply(
            text,
            prompt_tokens,
            completion_tokens,
            latency,
            str(getattr(resp, "model", None) or self.model),
            finish,
        )


class AnthropicBackend:
    def __init__(
        self, model: str, base_url: str | None, api_key: str | None, timeout: float | None, redact: Redactor
    ) -> None:
        try:
            import anthropic
        except ImportError:
            from scriptrl.errors import UserError

            raise UserError(
                "the anthropic backend needs the anthropic SDK: pip install 'scriptrl[llm]'"
            ) from None
        self.sdk = anthropic
        self.model = model
        self.redact = redact
        self.client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=bounded(timeout), max_retries=0
        )
        # anthropic 2.x dropped the sampling temperature from messages.create (newer models fix it);
        # the search's temperature then still shapes the prompt's wording (small or bold changes).
        self.send_temperature = "temperature" in inspect.signature(self.client.messages.create).parameters

    def complete(self, messages: Messages, temperature: float, max_tokens: int, seed: int | None) -> Reply:
        t0 = time.monotonic()
        try:
            extra = {"temperature": min(1.0, temperature)} if self.send_temperature else {}
            # temperature goes in **extra only where this SDK version takes it, which no overload spells
            resp = self.client.messages.create(  # type: ignore[call-overload]
                model=self.model,
                system=messages.system,
                max_tokens=max_tokens,
                messages=[{"role": r, "content": c} for r, c in messages.turns],
                **extra,
            )
            text = "".join(getattr(b, "text", "") for b in resp.content if getattr(b, "type", "") == "text")
            usage = resp.usage
        except Exception as e:
            raise _classify(e, self.sdk, self.redact) from None
        return Reply(
            text,
            int(usage.input_tokens or 0),
            int(usage.output_tokens or 0),
            time.monotonic() - t0,
            str(resp.model or self.model),
            resp.stop_reason,
        )


class CommandBackend:
    """Any program that reads a prompt and prints a reply, e.g. a coding agent's CLI.

    The prompt goes to standard input, or to a file whose path replaces ``{prompt_file}`` in
    the command. If the output is a JSON object with a ``result`` string (the shape agent
    CLIs print with a JSON output flag), its ``usage`` token counts and ``total_cost_usd`` are
    used; otherwise the token counts are unknown and recorded as 0."""

    def __init__(
        self, command: str | list[str], timeout: float | None, redact: Redactor, model: str | None = None
    ) -> None:
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.argv:
            from scriptrl.errors import UserError

            raise UserError("the command backend needs `command = [...]` in the LLM config")
        self.timeout = bounded(timeout)
        self.redact = redact
        self.model = model or Path(self.argv[0]).name

    def complete(self, messages: Messages, temperature: float, max_tokens: int, seed: int | None) -> Reply:
        prompt = messages.as_text()
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="scriptrl-prompt-") as tmp:
            argv = list(self.argv)
            stdin = prompt
            if any("{prompt_file}" in a for a in argv):
                path = Path(tmp) / "prompt.md"
                path.write_text(prompt, encoding="utf-8")
                argv = [a.replace("{prompt_file}", str(path)) for a in argv]
                stdin = ""
            try:
                proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise CallError(f"the command did not answer within {self.timeout:g} s", True) from None
            except OSError as e:
                raise CallError(self.redact(f"cannot run {argv[0]}: {e.strerror}"), False) from None
        latency = time.monotonic() - t0
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
            raise CallError(self.redact(f"the command exited with status {proc.returncode}: {tail}"), False)
        return self._reply(proc.stdout, latency)

    def _reply(self, out: str, latency: float) -> Reply:
        try:
            data = json.loads(out)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("result"), str):
            usage = data.get("usage") or {}
            pt = int(usage.get("input_tokens") or usage.get("prompt_tokens") or 0)
            pt += int(usage.get("cache_read_input_tokens") or 0) + int(
                usage.get("cache_creation_input_tokens") or 0
            )
            ct = int(usage.get("output_tokens") or usage.get("completion_tokens") or 0)
            cost = data.get("total_cost_usd", data.get("cost_usd"))
            return Reply(
                data["result"],
                pt,
                ct,
                latency,
                self.model,
                None,
                float(cost) if isinstance(cost, int | float) else None,
            )
        return Reply(out, 0, 0, latency, self.model)
