"""The pieces around a model call: reply parsing, prompts, prices, settings and the bandit.

Reply parsing is also tested on real recorded replies (test_llm_replies.py); the cases here
pin down each recovery rule on its own.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from scriptrl.envs import resolve_env
from scriptrl.errors import UserError
from scriptrl.generators.base import GenContext, GeneratorCall, ParentInfo
from scriptrl.generators.llm import prompts
from scriptrl.generators.llm.backends import Redactor, backoff_delay, retry_after
from scriptrl.generators.llm.pricing import PriceTable
from scriptrl.generators.llm.replies import EditError, apply_edits, extract_code, interpret, tidy
from scriptrl.generators.llm.settings import LLMSettings, check, decide, from_train_config
from scriptrl.program import check_source
from scriptrl.search.config import TrainConfig
from scriptrl.search.portfolio import Portfolio

GOOD = "def policy(obs):\n    return 1 if obs[2] > 0 else 0\n"

# --------------------------------------------------------------------------- replies


def test_the_fenced_block_with_the_entry_point_wins():
    text = (
        "Sure!\n```python\nimport numpy as np\n```\nThen:\n```python\n"
        + GOOD
        + "```\nExample:\n```python\nprint(policy([0, 0, 0, 0]))\n```\n"
    )
    code, how = extract_code(text)
    assert code == GOOD and how == "fenced"


def test_an_unclosed_fence_still_yields_its_code():
    code, how = extract_code("Here:\n```python\n" + GOOD)
    assert code == GOOD and how == "fenced"


def test_bare_code_without_fences_is_found():
    code, how = extract_code("The policy is\n\nimport math\ndef policy(obs):\n    return 0\n")
    assert how == "bare" and code.startswith("import math\ndef policy")


def test_no_code_is_reported():
    p = interpret("I am sorry, I cannot help with that.")
    assert p.source is None and "no Python program" in p.problem
    assert interpret("   ").problem == "the reply was empty"


def test_tidy_drops_harness_code_and_keeps_the_program():
    src = (
        "import numpy as np\nimport gymnasium as gym\nW = np.array([1.0, 0.5])\nTABLE = {}\n"
        "for i in range(3):\n    TABLE[i] = i\n\n"
        "def policy(obs):\n    return int(W[0] * obs[2] + W[1] * obs[3] + TABLE[0] > 0)\n\n"
        "env = gym.make('CartPole-v1')\nobs, _ = env.reset()\nprint(policy(obs))\n"
        "agent = policy\n"
        "if __name__ == '__main__':\n    print('hi')\n"
    )
    out, dropped = tidy(src)
    assert check_source(out) == []
    assert "gym" not in out and "print" not in out and "__main__" not in out
    assert "TABLE[i] = i" in out and "W = np.array" in out
    assert any("unused import of gymnasium" in d for d in dropped)


def test_tidy_keeps_a_forbidden_module_the_policy_really_uses():
    src = "import os\n\ndef policy(obs):\n    return os.getpid() % 2\n"
    assert tidy(src) == (src, ())
    assert "import of 'os' is not allowed" in interpret(f"```python\n{src}```").problem


def test_tidy_keeps_seeding_calls():
    src = "import random\nrandom.seed(3)\n\ndef policy(obs):\n    return random.randint(0, 1)\n"
    assert tidy(src)[0] == src


def test_edits_apply_verbatim_and_after_reindentation():
    parent = "def policy(obs):\n    if obs[2] > 0:\n        return 1\n    return 0\n"
    verbatim = apply_edits(parent, [("        return 1\n", "        return 1 if obs[3] > -1 else 0\n")])
    assert "obs[3] > -1" in verbatim
    loose = apply_edits(
        parent, [("if obs[2] > 0:\n    return 1", "if obs[2] + 0.3 * obs[3] > 0:\n    return 1")]
    )
    assert loose == "def policy(obs):\n    if obs[2] + 0.3 * obs[3] > 0:\n        return 1\n    return 0\n"


def test_edits_that_do_not_apply_fall_back_to_a_full_program():
    parent = GOOD
    reply = (
        "<<<<<<< SEARCH\n    return 2\n=======\n    return 3\n>>>>>>> REPLACE\n"
        "Or the whole program:\n```python\ndef policy(obs):\n    return 0\n```\n"
    )
    p = interpret(reply, parent)
    assert p.ok and p.how == "edits-fallback" and p.source == "def policy(obs):\n    return 0\n"
    only_edit = interpret("<<<<<<< SEARCH\n    return 2\n=======\n    return 3\n>>>>>>> REPLACE\n", parent)
    assert only_edit.source is None and "does not occur" in only_edit.problem
    with pytest.raises(EditError, match="occurs 2 times"):
        apply_edits("a = 1\na = 1\n", [("a = 1\n", "a = 2\n")])


# --------------------------------------------------------------------------- prompts


@pytest.fixture(scope="module")
def ctx() -> GenContext:
    c = GenContext.for_env(resolve_env("CartPole-v1"))
    c.history = [20.0, 41.5, 41.5, 120.0]
    return c


def digest(end: str = "terminated") -> dict:
    eps = [
        {
            "seed": s,
            "return": 30.0 + s,
            "length": 30 + s,
            "end": end,
            "reason": None,
            "tail": [{"obs": [0.1, 0.5, 0.19 + 0.001 * k, 1.2], "action": 1} for k in range(5)],
            "action_summary": {"histogram": [10, 20 + s]},
        }
        for s in range(3)
    ]
    return {"episodes": 3, "mean": 31.0, "std": 0.8, "min": 30.0, "max": 32.0, "failures": [], "digest": eps}


def test_every_prompt_renders_from_its_file(ctx):
    parent = ParentInfo(3, GOOD, 31.0, digest())
    assert "def policy(obs)" in prompts.system() and "numpy" in prompts.system()
    init = prompts.initial_prompt(ctx, 0, "keep the cart near the centre").as_openai()
    assert "keep the cart near the centre" in init[1]["content"] and "CartPole-v1" in init[1]["content"]
    assert "weighted sum" in init[1]["content"]  # the first hint
    assert "rates of change" in prompts.initial_prompt(ctx, 1, None).as_openai()[1]["content"]
    assert "What the user wants" not in prompts.initial_prompt(ctx, 0, None).as_openai()[1]["content"]
    mut, edits = prompts.mutate_prompt(ctx, parent, 0.2, None)
    text = mut.as_openai()[1]["content"]
    assert not edits and GOOD.strip() in text and "dev score 31.00" in text
    assert "20.00, 41.50, 41.50, 120.00" in text and "small, careful change" in text
    assert (
        "step 30: [0.1, 0.5, 0.194, 1.2] -> 1 (push_right)" in text
        and "[cart_position, cart_velocity" in text
    )
    assert "0 push_left 32%" in text and "3 terminated" in text
    cross = prompts.crossover_prompt(
        ctx, parent, ParentInfo(4, GOOD.replace("0 else", "0.01 else"), 9.0, None), 1.3, None
    ).as_openai()[1]["content"]
    assert "Program A (dev score 31.00)" in cross and "No episode details" in cross and "Be bold" in cross
    assert "{{" not in text + cross and "{{" not in prompts.repair_prompt("x", True)
    assert "cut off" in prompts.repair_prompt("x", True) and "cut off" not in prompts.repair_prompt("x")


def test_long_parents_are_changed_through_edits(ctx):
    long = "def policy(obs):\n" + "".join(f"    x{i} = obs[0] * {i}\n" for i in range(50)) + "    return 0\n"
    _, edits = prompts.mutate_prompt(ctx, ParentInfo(1, long, 9.0, None), 0.5, None, "auto")
    assert edits
    _, full = prompts.mutate_prompt(ctx, ParentInfo(1, long, 9.0, None), 0.5, None, "full")
    assert not full


def test_a_template_with_an_unknown_value_fails_loudly():
    with pytest.raises(prompts.PromptError, match="not provided"):
        prompts.render("repair")


# --------------------------------------------------------------------------- prices, keys, retries


def test_prices_longest_match_and_user_overrides(tmp_path, monkeypatch):
    table = PriceTable.load()
    assert table.lookup("gpt-4o-mini-2024-07-18").prompt == 0.15  # not gpt-4o*'s price
    assert table.lookup("gpt-4o-2024-08-06").prompt == 2.50
    assert table.lookup("local:qwen2.5-coder-1.5b").cost(10_000, 10_000) == 0.0
    assert table.lookup("some-new-model") is None
    user = tmp_path / "p.toml"
    user.write_text('[models."gpt-4o*"]\nprompt = 1.0\ncompletion = 2.0\n')
    monkeypatch.setenv("SCRIPTRL_PRICES", str(user))
    assert PriceTable.load().lookup("gpt-4o").cost(1_000_000, 500_000) == pytest.approx(2.0)
    user.write_text('[models."x"]\nprompt = "free"\n')
    with pytest.raises(UserError, match="numeric"):
        PriceTable.load()


def test_redaction_and_retry_after_parsing():
    r = Redactor("sk-live-abcdefgh12345678")
    assert r("bad key sk-live-abcdefgh12345678 given") == "bad key *** given"
    assert r("Authorization: Bearer abcdefghijklmnop") == "Authorization: ***"
    assert r("other key sk-proj-ZZZZZZZZZZZZ") == "other key ***"
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after-ms": "1500"}) == 1.5
    assert retry_after({"retry-after": "soon"}) is None and retry_after(None) is None
    rng = random.Random(0)
    assert all(0.5 * min(30, 2**a) <= backoff_delay(a, 1.0, 30.0, rng) <= min(30, 2**a) for a in range(8))


# --------------------------------------------------------------------------- settings


def test_no_api_configured_means_the_embedded_model(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    s = from_train_config(TrainConfig(env="CartPole-v1", generator="llm"))
    assert (s.backend, s.model, s.threads) == ("embedded", "qwen2.5-coder-1.5b", 1)
    assert from_train_config(TrainConfig(env="x", model="qwen2.5-coder-0.5b")).model == "qwen2.5-coder-0.5b"
    served = from_train_config(
        TrainConfig(env="x", model="llama3.1:8b", base_url="http://127.0.0.1:11434/v1")
    )
    assert (served.backend, served.model) == ("openai", "llama3.1:8b")
    with pytest.raises(UserError, match="not a local model"):
        from_train_config(TrainConfig(env="x", model="gpt-4o-mini"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert from_train_config(TrainConfig(env="x", model="gpt-4o-mini")).backend == "openai"


def test_a_config_file_picks_a_served_model(tmp_path, monkeypatch):
    cfg = tmp_path / "llm.toml"
    cfg.write_text(
        '[llm]\nbase_url = "https://gateway.example/api/v1"\nmodel = "deepseek/deepseek-chat"\n'
        'api_key_env = "GATEWAY_KEY"\nconcurrency = 4\ntemperature_range = [0.1, 0.9]\n'
    )
    s = from_train_config(TrainConfig(env="x", model=str(cfg), task="balance", seed=3, max_cost=1.5))
    assert (s.backend, s.model, s.key_env, s.concurrency, s.task, s.seed, s.max_cost) == (
        "openai",
        "deepseek/deepseek-chat",
        "GATEWAY_KEY",
        4,
        "balance",
        3,
        1.5,
    )
    assert (
        s.model_temperature(0.0) == 0.1 and s.model_temperature(1.5) == 0.9 and s.model_temperature(9) == 0.9
    )
    cfg.write_text('api_key = "sk-123"\n')
    with pytest.raises(UserError, match="do not put the key in the file"):
        from_train_config(TrainConfig(env="x", model=str(cfg)))
    cfg.write_text("temprature = 1\n")
    with pytest.raises(UserError, match="unknown setting"):
        from_train_config(TrainConfig(env="x", model=str(cfg)))
    with pytest.raises(UserError, match="temperature_range"):
        check(decide(LLMSettings(model="qwen2.5-coder-0.5b", temperature_range=(1.0, 0.2))))


def test_command_backend_reads_the_program_from_a_command(tmp_path):
    from scriptrl.generators.llm import build_generator

    script = tmp_path / "agent.sh"
    script.write_text(
        "#!/bin/sh\ncat > /dev/null\nprintf '```python\\ndef policy(obs):\\n    return 1\\n```\\n'\n"
    )
    script.chmod(0o755)
    gen = build_generator(check(decide(LLMSettings(command=[str(script)]))), say=lambda m: None)
    ctx = GenContext.for_env(resolve_env("CartPole-v1"))
    cand = gen.mutate(ctx, ParentInfo(1, GOOD, 9.0, None), 0.5, random.Random(0))
    assert cand.source == "def policy(obs):\n    return 1\n" and cand.call.model == "agent.sh"
    json_out = tmp_path / "agent-json.sh"
    json_out.write_text(
        "#!/bin/sh\ncat > /dev/null\n"
        'echo \'{"result": "def policy(obs):\\\\n    return 0\\\\n", "usage": '
        '{"input_tokens": 900, "output_tokens": 40}, "total_cost_usd": 0.0123}\'\n'
    )
    json_out.chmod(0o755)
    gen = build_generator(check(decide(LLMSettings(command=f"{json_out} --print"))), say=lambda m: None)
    cand = gen.mutate(ctx, ParentInfo(1, GOOD, 9.0, None), 0.5, random.Random(0))
    assert cand.source == "def policy(obs):\n    return 0\n"
    assert (cand.call.prompt_tokens, cand.call.completion_tokens, cand.call.cost_usd) == (900, 40, 0.0123)
    assert Path(script).exists()


# --------------------------------------------------------------------------- the bandit


def test_the_bandit_weighs_improvements_by_cost():
    class Gen:
        def __init__(self, name: str) -> None:
            self.name = name

    p = Portfolio([Gen("llm"), Gen("offline")])
    slow = GeneratorCall(latency_s=10.0)  # 6 cost units per child
    fast = GeneratorCall(latency_s=0.001)
    for _ in range(30):  # the same success rate: one win in three
        for arm, call in (("llm.mutate", slow), ("offline.mutate", fast)):
            for k in range(3):
                p.credit(arm, k == 0, call)
    p.credit("llm.crossover", False, slow)
    p.credit("offline.crossover", False, fast)
    picks = [p.choose(random.Random(i), can_cross=False)[0].name for i in range(20)]
    assert picks.count("offline") == 20
    p.charge("offline.mutate", GeneratorCall(latency_s=0.0))  # a free failed call costs nothing extra
    state = p.to_state()
    q = Portfolio([Gen("llm"), Gen("offline")])
    q.restore(state)
    assert q.cost == p.cost and q.cost["llm.mutate"] > 5 * q.cost["offline.mutate"]
