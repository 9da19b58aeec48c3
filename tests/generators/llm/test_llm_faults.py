"""Faults of a served model, against a local OpenAI-compatible server that misbehaves on cue.

The server (below) listens on 127.0.0.1 only and answers ``POST /v1/chat/completions`` from a
script of steps, one per request (the last one repeats): a valid completion, an HTTP status
with or without Retry-After, malformed JSON, empty content, or a hang. It keeps every request
so a test can check what the client sent. The generator is the real one with the real
``openai`` client; only ``sleep`` is replaced where a test measures the waits it chose.
"""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scriptrl.envs import resolve_env
from scriptrl.generators.base import GenContext, ParentInfo
from scriptrl.generators.llm import build_generator
from scriptrl.generators.llm.settings import LLMSettings, check, decide

KEY = "sk-test-SECRET0123456789abcdef"
KEY_ENV = "SCRIPTRL_TEST_LLM_KEY"


def ok(
    content: str,
    prompt_tokens: int = 100,
    completion_tokens: int = 50,
    model: str = "fake-model",
    finish: str = "stop",
) -> dict:
    return {
        "kind": "ok",
        "content": content,
        "usage": (prompt_tokens, completion_tokens),
        "model": model,
        "finish": finish,
    }


def status(code: int, retry_after: str | None = None, message: str = "try later") -> dict:
    return {"kind": "status", "code": code, "retry_after": retry_after, "message": message}


MALFORMED = {"kind": "malformed"}
EMPTY = {"kind": "empty"}


def hang(seconds: float) -> dict:
    return {"kind": "hang", "seconds": seconds}


class FaultServer:
    def __init__(self, script: list[dict]) -> None:
        self.script = list(script)
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer._lock:
                    outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    step = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                outer._answer(self, step, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _answer(self, h: BaseHTTPRequestHandler, step: dict, body: dict) -> None:
        kind = step["kind"]
        if kind == "hang":
            time.sleep(step["seconds"])
            return self._send(h, 200, {"choices": []})
        if kind == "status":
            headers = {"retry-after": step["retry_after"]} if step.get("retry_after") is not None else {}
            return self._send(
                h, step["code"], {"error": {"message": step["message"], "type": "fault"}}, headers
            )
        if kind == "malformed":
            return self._send_raw(h, 200, b'{"id": "x", "choices": [{"message": {"content": "trunc')
        shape = (
            _message if h.path.endswith("/messages") else _completion
        )  # Anthropic's Messages API, or OpenAI's
        if kind == "empty":
            return self._send(h, 200, shape("", 20, 0, body.get("model", "fake-model"), "stop"))
        pt, ct = step["usage"]
        return self._send(h, 200, shape(step["content"], pt, ct, step["model"], step["finish"]))

    def _send(self, h: BaseHTTPRequestHandler, code: int, obj: dict, headers: dict | None = None) -> None:
        self._send_raw(h, code, json.dumps(obj).encode(), headers)

    def _send_raw(
        self, h: BaseHTTPRequestHandler, code: int, data: bytes, headers: dict | None = None
    ) -> None:
        try:
            h.send_response(code)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass


def _completion(content: str, pt: int, ct: int, model: str, finish: str) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        ],
        "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
    }


def _message(content: str, pt: int, ct: int, model: str, finish: str) -> dict:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": content}] if content else [],
        "stop_reason": {"stop": "end_turn", "length": "max_tokens"}.get(finish, finish),
        "stop_sequence": None,
        "usage": {"input_tokens": pt, "output_tokens": ct},
    }


# --------------------------------------------------------------------------- helpers


def program(k: float = 0.5) -> str:
    return (
        "Here is the policy:\n```python\ndef policy(obs):\n"
        f"    return 1 if obs[2] + {k} * obs[3] > 0 else 0\n```\n"
    )


@pytest.fixture(scope="module")
def ctx() -> GenContext:
    return GenContext.for_env(resolve_env("CartPole-v1"))


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def make_gen(srv: FaultServer, waits: list | None = None, **overrides):
    s = LLMSettings(
        model="fake-model",
        base_url=srv.base_url,
        api_key_env=KEY_ENV,
        timeout=5.0,
        retries=3,
        backoff=0.01,
        backoff_max=0.05,
        max_failures=3,
    )
    for k, v in overrides.items():
        setattr(s, k, v)
    messages: list[str] = []
    gen = build_generator(check(decide(s)), say=messages.append)
    if waits is not None:
        gen.sleep = waits.append
    gen.messages = messages
    return gen


PARENT = ParentInfo(id=7, source="def policy(obs):\n    return 1 if obs[2] > 0 else 0\n", score=40.0)


def header(req: dict, name: str) -> str | None:
    return next((v for k, v in req["headers"].items() if k.lower() == name), None)


# --------------------------------------------------------------------------- retries


def test_429_honours_retry_after(ctx, key):
    waits: list[float] = []
    with FaultServer([status(429, retry_after="3"), ok(program())]) as srv:
        gen = make_gen(srv, waits)
        cand = gen.mutate(ctx, PARENT, 0.5, random.Random(0))
    assert waits == [3.0]
    assert cand is not None and cand.generator == "llm.mutate" and cand.parents == (7,)
    assert (cand.call.prompt_tokens, cand.call.completion_tokens, cand.call.ok) == (100, 50, True)
    assert len(srv.requests) == 2 and gen.drain_calls() == []


def test_retry_after_as_http_date(ctx, key):
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 5))
    waits: list[float] = []
    with FaultServer([status(503, retry_after=when), ok(program())]) as srv:
        cand = make_gen(srv, waits).mutate(ctx, PARENT, 0.5, random.Random(0))
    assert cand is not None and len(waits) == 1 and 2.0 <= waits[0] <= 5.5


def test_5xx_backs_off_exponentially_with_jitter(ctx, key):
    waits: list[float] = []
    with FaultServer([status(500), status(502), status(500), ok(program())]) as srv:
        cand = make_gen(srv, waits, backoff=1.0, backoff_max=30.0).mutate(ctx, PARENT, 0.5, random.Random(0))
    assert cand is not None and len(srv.requests) == 4
    assert len(waits) == 3
    for attempt, w in enumerate(waits):
        assert 0.5 * 2**attempt <= w <= 2**attempt  # jitter within the exponential step


def test_connection_refused_is_retried_then_recorded(ctx, key):
    with FaultServer([ok(program())]) as srv:
        dead = srv.base_url
    waits: list[float] = []
    s = check(
        decide(LLMSettings(model="fake-model", base_url=dead, api_key_env=KEY_ENV, retries=2, backoff=0.01))
    )
    gen = build_generator(s, say=lambda m: None)
    gen.sleep = waits.append
    assert gen.mutate(ctx, PARENT, 0.5, random.Random(0)) is None
    assert len(waits) == 2
    [(label, call)] = gen.drain_calls()
    assert label == "llm.mutate" and not call.ok and "cannot connect" in call.error


def test_malformed_json_is_retried(ctx, key):
    with FaultServer([MALFORMED, ok(program())]) as srv:
        cand = make_gen(srv, []).mutate(ctx, PARENT, 0.5, random.Random(0))
    assert cand is not None and len(srv.requests) == 2


def test_malformed_json_every_time_is_a_failed_call(ctx, key):
    with FaultServer([MALFORMED]) as srv:
        gen = make_gen(srv, [], retries=1)
        assert gen.mutate(ctx, PARENT, 0.5, random.Random(0)) is None
    [(_, call)] = gen.drain_calls()
    assert not call.ok and call.error.startswith("malformed response")


def test_empty_content_is_recorded_with_its_tokens_and_no_candidate(ctx, key):
    with FaultServer([EMPTY]) as srv:
        gen = make_gen(srv, [])
        assert gen.mutate(ctx, PARENT, 0.5, random.Random(0)) is None
    assert len(srv.requests) == 1  # an empty reply is an answer, not a transport fault: no retry, no repair
    [(label, call)] = gen.drain_calls()
    assert not call.ok and call.error.startswith("empty reply") and call.prompt_tokens == 20


def test_a_hanging_server_times_out(ctx, key):
    with FaultServer([hang(4.0)]) as srv:
        gen = make_gen(srv, [], timeout=0.5, retries=1)
        t0 = time.monotonic()
        assert gen.mutate(ctx, PARENT, 0.5, random.Random(0)) is None
        elapsed = time.monotonic() - t0
    assert elapsed < 3.0  # two attempts of 0.5 s, not two hangs of 4 s
    [(_, call)] = gen.drain_calls()
    assert not call.ok and "timed out" in call.error


def test_client_errors_are_not_retried(ctx, key):
    with FaultServer([status(404, message="model 'fake-model' not found")]) as srv:
        gen = make_gen(srv, [])
        assert gen.mutate(ctx, PARENT, 0.5, random.Random(0)) is None
    assert len(srv.requests) == 1
    [(_, call)] = gen.drain_calls()
    assert "HTTP 404" in call.error and "not found" in call.error


def test_a_rejected_parameter_is_adapted_once(ctx, key):
    msg = (
        "Unsupported parameter: 'max_tokens' is not supported with this model."
        " Use 'max_completion_tokens' instead."
    )
    with FaultServer([status(400, message=msg), ok(program())]) as srv:
        gen = make_gen(srv, [])
        assert gen.mutate(ctx, PARENT, 0.5, random.Random(0)) is not None
        assert gen.mutate(ctx, PARENT, 0.6, random.Random(1)) is not None
    first, second, third = (r["body"] for r in srv.requests)
    assert "max_tokens" in first and "max_completion_tokens" in second and "max_completion_tokens" in third


def test_repeated_failures_fall_back_to_offline_and_say_so_once(ctx, key):
    with FaultServer([status(500)]) as srv:
        gen = make_gen(srv, [], retries=1, max_failures=3)
        results = [gen.mutate(ctx, PARENT, 0.5, random.Random(i)) for i in range(6)]
        served = len(srv.requests)
    assert results[:3] == [None, None, None]
    assert all(c is not None and c.generator == "offline.mutate" for c in results[3:])
    assert served == 3 * 2  # three calls of two attempts; none after the fallback
    assert len(gen.messages) == 1 and "continues with the offline generator" in gen.messages[0]
    events = gen.drain_events()
    assert [k for k, _ in events].count("llm_fallback") == 1
    assert len(gen.drain_calls()) == 3
    assert gen.initial(ctx, 3, 0.5, random.Random(0))  # offline first programs


def test_the_key_is_sent_but_never_recorded(ctx, key):
    echo = f"Incorrect API key provided: {KEY}. You can find your key at https://example.invalid."
    with FaultServer([status(401, message=echo)]) as srv:
        gen = make_gen(srv, [])
        gen.mutate(ctx, PARENT, 0.5, random.Random(0))
    assert header(srv.requests[0], "authorization") == f"Bearer {KEY}"
    [(_, call)] = gen.drain_calls()
    assert KEY not in call.error and "***" in call.error
    assert KEY not in repr(gen.settings) and KEY not in json.dumps(gen.settings.__dict__, default=str)


# --------------------------------------------------------------------------- replies


def test_junk_gets_one_repair_round_that_shows_the_error(ctx, key):
    junk = (
        "```python\nimport gymnasium as gym\nenv = gym.make('CartPole-v1')\n"
        "def policy(obs):\n    return gym.spaces\n```"
    )
    with FaultServer([ok(junk, 300, 80), ok(program(0.7), 400, 60)]) as srv:
        gen = make_gen(srv, [])
        cand = gen.mutate(ctx, PARENT, 0.5, random.Random(0))
    assert cand is not None and "0.7" in cand.source and "repaired after" in cand.note
    assert (cand.call.prompt_tokens, cand.call.completion_tokens) == (400, 60)
    [(label, first)] = gen.drain_calls()  # the unusable first reply is accounted for too
    assert (first.prompt_tokens, first.completion_tokens, first.ok) == (300, 80, False)
    roles = [m["role"] for m in srv.requests[1]["body"]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "import of 'gymnasium' is not allowed" in srv.requests[1]["body"]["messages"][-1]["content"]


def test_still_invalid_after_repair_goes_to_the_search_with_its_reason(ctx, key):
    bad = "```python\nimport os\ndef policy(obs):\n    return os.getpid() % 2\n```"
    with FaultServer([ok(bad)]) as srv:
        gen = make_gen(srv, [])
        cand = gen.mutate(ctx, PARENT, 0.5, random.Random(0))
    assert cand is not None and "import os" in cand.source
    assert not cand.call.ok and "import of 'os' is not allowed" in cand.call.error


def test_prose_without_code_after_repair_is_a_failed_call(ctx, key):
    with FaultServer([ok("I cannot help with that.")]) as srv:
        gen = make_gen(srv, [])
        assert gen.mutate(ctx, PARENT, 0.5, random.Random(0)) is None
    calls = gen.drain_calls()
    assert len(calls) == 2 and all("no Python program" in c.error for _, c in calls)


def test_search_replace_edits_apply_to_the_parent(ctx, key):
    edit = (
        "<<<<<<< SEARCH\n    return 1 if obs[2] > 0 else 0\n=======\n"
        "    return 1 if obs[2] + 0.4 * obs[3] > 0 else 0\n>>>>>>> REPLACE\n"
    )
    with FaultServer([ok(edit)]) as srv:
        cand = make_gen(srv, [], edits="edits").mutate(ctx, PARENT, 0.5, random.Random(0))
    assert cand.source == "def policy(obs):\n    return 1 if obs[2] + 0.4 * obs[3] > 0 else 0\n"
    assert "SEARCH/REPLACE" in cand.note
    assert "<<<<<<< SEARCH" in srv.requests[0]["body"]["messages"][-1]["content"]


def test_temperature_follows_the_search_schedule_and_seed_is_sent(ctx, key):
    with FaultServer([ok(program())]) as srv:
        gen = make_gen(srv, [], temperature_range=(0.2, 1.0))
        gen.mutate(ctx, PARENT, 0.0, random.Random(0))
        gen.mutate(ctx, PARENT, 1.5, random.Random(0))
    low, high = (r["body"] for r in srv.requests)
    assert (low["temperature"], high["temperature"]) == (0.2, 1.0)
    assert low["seed"] == high["seed"] == random.Random(0).randrange(2**31)
    assert low["model"] == "fake-model"


def test_initial_programs_run_concurrently_for_served_models(ctx, key):
    with FaultServer([ok(program(0.1 * i)) for i in range(1, 5)]) as srv:
        gen = make_gen(srv, [], concurrency=4, initial_programs=4)
        cands = gen.initial(ctx, 8, 0.5, random.Random(0))
    assert len(cands) == 4 and all(c.generator == "llm.init" and c.change == "init" for c in cands)
    assert len({c.source for c in cands}) == 4 and len(srv.requests) == 4


# --------------------------------------------------------------------------- whole runs


def _config(tmp_path: Path, srv: FaultServer, **extra) -> str:
    lines = [
        f'base_url = "{srv.base_url}"',
        'model = "fake-model"',
        f'api_key_env = "{KEY_ENV}"',
        "backoff = 0.01",
        "backoff_max = 0.02",
        "initial_programs = 2",
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    path = tmp_path / "llm.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.slow
def test_a_run_against_a_served_model_records_every_call(tmp_path, key):
    """The whole loop through an OpenAI-compatible URL: faults, junk and good programs."""
    from scriptrl.search import train
    from scriptrl.store import RunStore

    junk = ok("```python\nimport socket\ndef policy(obs):\n    return socket.AF_INET % 2\n```")
    # first programs: a good one, a 429, prose (repaired into a good one); then a mutation that
    # stays junk through its repair round, and malformed JSON (retried)
    script = [
        ok(program(0.1)),
        status(429, retry_after="0"),
        ok("no code"),
        ok(program(0.2)),
        junk,
        junk,
        MALFORMED,
    ]
    script += [ok(program(0.05 * i), 120 + i, 40 + i) for i in range(1, 60)]
    with FaultServer(script) as srv:
        res = train(
            "CartPole-v1",
            generator="llm",
            model=_config(tmp_path, srv),
            run_dir=tmp_path / "run",
            max_iterations=2,
            children_per_iteration=3,
            initial_programs=4,
            workers=1,
            tune_every=0,
            target=10_000,
            model_lane=False,  # rounds that wait for each call: the served script is replayed in order
        )
        served = [r for r in srv.requests]
    store = RunStore.open(tmp_path / "run")
    calls = store.calls()
    # every completion the server handed out is in the store, with its tokens
    sent_tokens = 0
    replay = list(script)
    for _ in served:
        step = replay.pop(0) if len(replay) > 1 else replay[0]
        if step["kind"] == "ok":
            sent_tokens += step["usage"][0]
    assert sum(c["prompt_tokens"] for c in calls) == sent_tokens == res.prompt_tokens
    assert any(c["program_id"] is None and not c["ok"] for c in calls)  # the unusable reply
    assert any(p["status"] == "invalid" and "socket" in (p["error"] or "") for p in store.programs())
    assert res.best_program_id is not None and res.iterations == 2
    # constant tuning (which now runs while the model writes) is a call without a model
    assert all(c["model"] == "fake-model" for c in calls if c["ok"] and c["generator"] != "cma.tune")
    raw = (tmp_path / "run" / "run.sqlite").read_bytes()
    store.close()
    assert KEY.encode() not in raw


@pytest.mark.slow
def test_max_cost_stops_the_run_cleanly(tmp_path, key, monkeypatch):
    from scriptrl.search import train

    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[models."fake-model"]\nprompt = 1000.0\ncompletion = 0.0\n'
    )  # $0.10 per 100-token call
    script = [ok(program(0.05 * i), 100, 10) for i in range(1, 80)]
    with FaultServer(script) as srv:
        res = train(
            "CartPole-v1",
            generator="llm",
            model=_config(tmp_path, srv, prices=str(prices)),
            run_dir=tmp_path / "run",
            max_cost=0.35,
            max_iterations=20,
            children_per_iteration=3,
            initial_programs=4,
            workers=1,
            tune_every=0,
            target=10_000,
            model_lane=False,  # rounds that wait for each call: the served script is replayed in order
        )
    assert res.stop_reason.startswith("cost budget reached")
    assert 0.35 <= res.cost_usd <= 0.35 + 0.1 + 1e-9  # the generator itself stops at the cap


# --------------------------------------------------------------------------- Anthropic


def test_the_anthropic_backend_over_http(ctx, key):
    """The official anthropic SDK against a local server speaking the Messages API: the key is
    sent (how is the SDK's choice), the system prompt in its own field, tokens come from the reply's
    usage, a 429 is retried, and the key never reaches a recorded error."""
    pytest.importorskip("anthropic")
    echo = f"invalid x-api-key {KEY}"
    with FaultServer(
        [
            status(429, retry_after="0"),
            ok(program(0.3), 321, 45, model="claude-test"),
            status(401, message=echo),
        ]
    ) as srv:
        waits: list[float] = []
        gen = make_gen(
            srv, waits, backend="anthropic", model="claude-test", base_url=srv.base_url.removesuffix("/v1")
        )
        cand = gen.mutate(ctx, PARENT, 0.5, random.Random(0))
        failed = gen.mutate(ctx, PARENT, 0.5, random.Random(1))
    assert [r["path"] for r in srv.requests] == ["/v1/messages"] * 3
    first = srv.requests[0]
    assert KEY in (header(first, "x-api-key"), (header(first, "authorization") or "").removeprefix("Bearer "))
    assert header(first, "anthropic-version")
    assert "def policy(obs)" in first["body"]["system"] and first["body"]["messages"][0]["role"] == "user"
    assert cand is not None and cand.source.strip().endswith("0.3 * obs[3] > 0 else 0")
    assert (cand.call.prompt_tokens, cand.call.completion_tokens, cand.call.model) == (321, 45, "claude-test")
    assert len(waits) == 1  # the 429, retried once
    assert failed is None
    [(_, call)] = gen.drain_calls()
    assert not call.ok and KEY not in call.error and "***" in call.error
