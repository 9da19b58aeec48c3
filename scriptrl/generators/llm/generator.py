"""The language-model generator: first programs, mutation and crossover written by a model.

It only ever returns source text; the search evaluates it in the sandbox like any other
candidate. Around each model call it adds what makes a weak or unreliable model usable in
a long unattended run:

* a reply that is not a valid program gets one repair round that shows the model its error;
  whatever is still invalid is handed to the search anyway, which records it as invalid with
  its reason (a reply with no program at all is recorded as a failed call);
* every request, including failed and repaired ones, is accounted for with the API's own token
  counts and a price from the price table; calls that yield no candidate are handed to the
  search through ``drain_calls`` so the run store holds them all;
* after ``max_failures`` calls in a row without a reply (after retries), the generator says so
  once and the run goes on with the offline generator instead of stopping;
* it stops calling a paid model once its own spending reaches ``--max-cost``.
"""

from __future__ import annotations

import random
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from scriptrl.generators.base import Candidate, GenContext, GeneratorBase, GeneratorCall, ParentInfo
from scriptrl.generators.llm import prompts
from scriptrl.generators.llm.backends import Backend, CallError, Redactor, Reply, with_retries
from scriptrl.generators.llm.pricing import FREE, Price, PriceTable
from scriptrl.generators.llm.replies import Parsed, interpret
from scriptrl.generators.llm.settings import LLMSettings
from scriptrl.generators.offline import OfflineMutator


class LLMGenerator(GeneratorBase):
    name = "llm"
    slow = True  # seconds per program: the search tunes constants while it writes

    def __init__(
        self,
        backend: Backend,
        settings: LLMSettings,
        model_label: str,
        prices: PriceTable | None = None,
        free: bool = False,
        redact: Redactor | None = None,
        server=None,
        say=None,
        sleep=time.sleep,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.model_label = model_label
        self.prices = prices
        self.free = free
        self.redact = redact or Redactor()
        self.server = server
        self.say = say or (lambda msg: sys.stderr.write(msg + "\n"))
        self.sleep = sleep
        self.fallback = OfflineMutator()
        self.degraded: str | None = None  # why the model is no longer used
        self.spent = 0.0
        self.failures_in_row = 0
        self._calls: list[tuple[str, GeneratorCall]] = []
        self._events: list[tuple[str, dict]] = []
        self._warned: set[str] = set()
        self._lock = threading.RLock()
        self._retry_rng = random.Random(f"{settings.seed}:llm-retry")
        self._deadline = time.monotonic() + settings.max_seconds if settings.max_seconds else None
        self._latencies: deque[float] = deque(maxlen=8)  # the last requests' seconds, for the live view
        self._in_flight = 0

    # ------------------------------------------------------------------ the protocol

    def initial(self, ctx: GenContext, n: int, temperature: float, rng: random.Random) -> list[Candidate]:
        return list(self.initial_stream(ctx, n, temperature, rng))

    def initial_stream(
        self, ctx: GenContext, n: int, temperature: float, rng: random.Random
    ) -> Iterator[Candidate]:
        """Up to ``initial_programs`` valid programs, each handed over as soon as it is written,
        asking again for invalid ones while attempts remain (at most ``n``), since an empty first
        population ends the run."""
        if self.degraded:
            yield from self.fallback.initial(ctx, n, temperature, rng)
            return
        want = min(n, self.settings.initial_programs)
        seeds = [rng.randrange(2**31) for _ in range(n)]
        attempt = valid = produced = 0
        width = max(1, int(self.settings.concurrency))

        def one(i: int) -> Candidate | None:
            return self._produce(
                "init",
                prompts.initial_prompt(ctx, i, self.settings.task),
                None,
                (),
                temperature,
                seeds[i],
                f"first program ({self._hint(i)})",
            )

        with ThreadPoolExecutor(width, thread_name_prefix="scriptrl-llm") as pool:
            while attempt < n and valid < want and not self.degraded:
                batch = list(range(attempt, min(n, attempt + (want - valid if width > 1 else 1))))
                attempt += len(batch)
                for c in pool.map(one, batch):
                    if c is not None:
                        produced += 1
                        valid += c.call is not None and c.call.ok
                        yield c
        if self.degraded and not produced:
            yield from self.fallback.initial(ctx, n, temperature, rng)

    def mutate(
        self, ctx: GenContext, parent: ParentInfo, temperature: float, rng: random.Random
    ) -> Candidate | None:
        if self.degraded:
            return self.fallback.mutate(ctx, parent, temperature, rng)
        messages, _ = prompts.mutate_prompt(
            ctx,
            parent,
            temperature,
            self.settings.task,
            self.settings.edits,
            self.settings.feedback_tokens,
            self.settings.n_ctx - self.settings.max_tokens,
        )
        return self._produce(
            "mutate",
            messages,
            parent.source,
            (parent.id,),
            temperature,
            rng.randrange(2**31),
            f"rewritten from program {parent.id} (score {parent.score:.2f})",
        )

    def crossover(
        self, ctx: GenContext, a: ParentInfo, b: ParentInfo, temperature: float, rng: random.Random
    ) -> Candidate | None:
        if self.degraded:
            return self.fallback.crossover(ctx, a, b, temperature, rng)
        messages = prompts.crossover_prompt(ctx, a, b, temperature, self.settings.task)
        return self._produce(
            "crossover",
            messages,
            None,
            (a.id, b.id),
            temperature,
            rng.randrange(2**31),
            f"combines programs {a.id} and {b.id}",
        )

    # ------------------------------------------------------------------ for the search

    def drain_calls(self) -> list[tuple[str, GeneratorCall]]:
        """Calls that produced no candidate (failed, empty, unusable or repaired-away replies),
        for the search to store; calls behind a candidate travel on ``Candidate.call``."""
        with self._lock:
            out, self._calls = self._calls, []
        return out

    def drain_events(self) -> list[tuple[str, dict]]:
        with self._lock:
            out, self._events = self._events, []
        return out

    @property
    def local_threads(self) -> int:
        """Cores the embedded model keeps busy while it writes (0 for a served model)."""
        return self.settings.threads if self.server is not None and self.server.running else 0

    @property
    def seconds_per_call(self) -> float | None:
        """Median seconds of the last few requests (retries and failures included)."""
        with self._lock:
            return statistics.median(self._latencies) if self._latencies else None

    @property
    def calls_in_flight(self) -> int:
        return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The embedded server answers one request at a time; a served model ``concurrency``."""
        return 1 if self.server is not None else max(1, int(self.settings.concurrency))

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    # ------------------------------------------------------------------ one program

    def _produce(
        self,
        op: str,
        messages: prompts.Messages,
        parent_source: str | None,
        parents: tuple[int, ...],
        temperature: float,
        seed: int,
        note: str,
    ) -> Candidate | None:
        label = f"{self.name}.{op}"
        reply = self._call(label, messages, temperature, seed)
        if reply is None:
            return None
        parsed = interpret(reply.text, parent_source)
        repaired_from = None
        if not parsed.ok and reply.text.strip() and self.settings.repair:
            self._record(label, reply, ok=False, error=f"unusable reply, repair requested: {parsed.problem}")
            cut = reply.finish_reason == "length"
            follow = messages.followed_by(
                reply.text, prompts.repair_prompt(parsed.problem or "invalid program", cut)
            )
            second = self._call(label, follow, temperature, (seed + 1) % 2**31)
            if second is None:
                return None
            repaired_from, reply, parsed = parsed.problem, second, interpret(second.text, parent_source)
        if parsed.source is None:
            self._record(label, reply, ok=False, error=parsed.problem)
            return None
        call = self._as_call(
            reply, ok=parsed.ok, error=None if parsed.ok else f"invalid program: {parsed.problem}"
        )
        return Candidate(
            parsed.source,
            parents,
            label,
            "init" if op == "init" else "structural",
            temperature,
            self._note(note, parsed, repaired_from),
            call,
        )

    def _note(self, note: str, parsed: Parsed, repaired_from: str | None) -> str:
        parts = [f"{note}; by {self.model_label}"]
        if parsed.how == "edits":
            parts.append("as SEARCH/REPLACE edits")
        elif parsed.how == "edits-fallback":
            parts.append("edits did not apply, used the full program in the reply")
        if repaired_from:
            parts.append(f"repaired after: {repaired_from[:120]}")
        if parsed.tidied:
            parts.append("dropped " + ", ".join(parsed.tidied[:3]))
        return "; ".join(parts)

    def _hint(self, i: int) -> str:
        hint = prompts.fragment("hint", i).rstrip(".")
        return hint[0].lower() + hint[1:] if hint else ""

    # ------------------------------------------------------------------ one call

    def _call(self, label: str, messages: prompts.Messages, temperature: float, seed: int) -> Reply | None:
        if self.settings.max_cost is not None and self.spent >= self.settings.max_cost and not self.free:
            self._once(
                "cost",
                "cost_cap",
                f"scriptrl: the model's spending reached --max-cost (${self.spent:.4f}); no further calls",
                {"spent_usd": self.spent},
            )
            return None
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._once(
                "time", "time_cap", "scriptrl: the run's time budget is spent; no further model calls", {}
            )
            return None
        t0 = time.monotonic()
        s = self.settings

        def on_retry(e: CallError, wait: float) -> None:
            with self._lock:
                self._events.append(
                    (
                        "llm_retry",
                        {"generator": label, "error": self.redact(str(e)), "wait_s": round(wait, 2)},
                    )
                )

        with self._lock:
            self._in_flight += 1
        try:
            reply = with_retries(
                lambda: self.backend.complete(messages, s.model_temperature(temperature), s.max_tokens, seed),
                s.retries,
                s.backoff,
                s.backoff_max,
                self.sleep,
                self._retry_rng,
                on_retry,
            )
        except CallError as e:
            call = GeneratorCall(
                time.monotonic() - t0, model=self.model_label, ok=False, error=self.redact(str(e))
            )
            self._failed(label, call, str(e))
            return None
        except Exception as e:  # a backend bug must cost one call, not the run
            error = self.redact(f"{type(e).__name__}: {e}")[:300]
            self._failed(
                label,
                GeneratorCall(time.monotonic() - t0, model=self.model_label, ok=False, error=error),
                error,
            )
            return None
        finally:
            with self._lock:
                self._in_flight -= 1
                self._latencies.append(time.monotonic() - t0)
        reply.latency_s = time.monotonic() - t0
        reply.cost_usd = self._cost(reply)
        with self._lock:
            self.spent += reply.cost_usd
        if not reply.text.strip():
            finish = f" (finish_reason {reply.finish_reason})" if reply.finish_reason else ""
            self._failed(label, self._as_call(reply, ok=False, error=f"empty reply{finish}"), "empty replies")
            return None
        with self._lock:
            self.failures_in_row = 0
        return reply

    def _cost(self, reply: Reply) -> float:
        if self.free:
            return 0.0
        if reply.cost_usd is not None:
            return float(reply.cost_usd)
        price: Price | None = None
        if self.prices is not None:
            price = self.prices.lookup(reply.model) or self.prices.lookup(self.settings.model or "")
        if price is None:
            self._once(
                f"price:{reply.model}",
                "llm_unpriced",
                f"scriptrl: no price for model '{reply.model}' in the price table; its calls count as $0 "
                "(add it to prices.toml or SCRIPTRL_PRICES so --max-cost can hold)",
                {"model": reply.model},
            )
            price = FREE
        return price.cost(reply.prompt_tokens, reply.completion_tokens)

    def _as_call(self, reply: Reply, ok: bool = True, error: str | None = None) -> GeneratorCall:
        return GeneratorCall(
            latency_s=reply.latency_s,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            cost_usd=reply.cost_usd or 0.0,
            model=self.model_label if self.free else reply.model or self.model_label,
            ok=ok,
            error=self.redact(error)[:500] if error else None,
        )

    def _record(self, label: str, reply: Reply, ok: bool, error: str | None) -> None:
        with self._lock:
            self._calls.append((label, self._as_call(reply, ok, error)))

    def _failed(self, label: str, call: GeneratorCall, why: str) -> None:
        with self._lock:
            self._calls.append((label, call))
            self.failures_in_row += 1
            give_up = self.failures_in_row >= self.settings.max_failures and not self.degraded
            if give_up:
                self.degraded = self.redact(why)
        if give_up:
            where = self.settings.base_url or self.model_label
            self._once(
                "degraded",
                "llm_fallback",
                f"scriptrl: the language model ({where}) failed {self.failures_in_row} calls in a row "
                f"(last: {self.redact(why)[:200]}); the run continues with the offline generator",
                {"model": self.model_label, "failures": self.failures_in_row, "last_error": self.redact(why)},
            )
            if self.server is not None:
                self.server.close()

    def _once(self, key: str, kind: str, message: str, data: dict) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
            self._events.append((kind, {"message": message.removeprefix("scriptrl: "), **data}))
        self.say(message)
