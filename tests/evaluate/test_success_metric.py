"""Success as a first-class metric: the rule language, the Wilson interval, the episode loop,
the store, the CLI and the search's --target-success, on real environments and real SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scriptrl.envs import resolve_env, with_success
from scriptrl.envs.description import curated, curated_files, parse_description
from scriptrl.envs.success_rule import parse_success
from scriptrl.errors import UserError
from scriptrl.evaluate import evaluate
from scriptrl.search import stopping
from scriptrl.search.champion import Champion
from scriptrl.search.config import TrainConfig
from scriptrl.search.leadership import StoredEvaluation
from scriptrl.store import RunStore
from scriptrl.success_rate import SuccessRate, wilson_interval

# The optimal FrozenLake 4x4 table (reaches the goal about 74 % of the time on the slippery ice).
FROZEN_TABLE = """\
ACTIONS = [0, 3, 3, 3, 0, 0, 0, 0, 3, 1, 0, 0, 0, 2, 1, 0]


def policy(obs):
    return ACTIONS[obs]
"""
BALANCE = "def policy(obs):\n    return 1 if obs[2] + 0.5 * obs[3] > 0 else 0\n"


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scriptrl", *args], capture_output=True, text=True, timeout=600, **kw
    )


# --------------------------------------------------------------------------- the language


def _judge(expression: str, steps: list[tuple[float, Any]], end: str = "terminated") -> bool:
    rule = parse_success(expression)
    summary = rule.tracker()
    for reward, info in steps:
        summary.step(reward, info)
    return rule.judge(summary, end)


def test_rule_names_only_the_info_keys_it_reads() -> None:
    rule = parse_success("not final.crashed and mean.speed >= 20 and final.lane != 0", "drove safely")
    assert rule.final_keys == ("crashed", "lane") and rule.mean_keys == ("speed",)
    assert rule.text == "drove safely"
    assert parse_success("episode_return > 0").text == "episode_return > 0"  # no text: the expression


def test_rule_reads_the_episode_summary() -> None:
    fast = [(1.0, {"crashed": False, "speed": np.float64(s)}) for s in (18, 22, 26)]
    assert _judge("not final.crashed and mean.speed >= 20", fast)
    assert not _judge("not final.crashed and mean.speed >= 23", fast)  # mean is 22
    crash = [*fast[:2], (0.0, {"crashed": np.bool_(True), "speed": 30.0})]
    assert not _judge("not final.crashed and mean.speed >= 20", crash)  # the last step's value counts
    assert _judge("episode_return == 3 and length == 3 and last_reward == 1", fast)
    assert _judge("terminated and not truncated", fast) and not _judge("terminated", fast, end="truncated")
    assert _judge("-last_reward < 0 and 0 < length <= 3", fast)
    assert _judge("last_reward >= 100 or length > 2", fast)


def test_success_is_shown_never_assumed() -> None:
    steps = [(1.0, {"speed": "fast"})]
    assert not _judge("not final.crashed", steps)  # a key never reported
    assert not _judge("mean.speed > 0", steps)  # no numeric value to average
    assert not _judge("final.speed > 3", steps)  # a string cannot be ordered against a number
    assert not _judge("not terminated", [(1.0, {})], end="failure")  # the policy failed
    assert not _judge("last_reward > 0 or length == 0", [])  # no step: no last reward, no verdict
    assert not _judge("final.crashed == 0", [(1.0, ["not", "a", "dict"])])  # info that is no mapping


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("__import__('os').system('echo hi')", "calls are not allowed"),
        ("open('/etc/passwd')", "calls are not allowed"),
        ("episode_return.__class__", "only final.KEY and mean.KEY take a dot"),
        ("final.__class__ == 1", "keys starting with '_'"),
        ("speed > 3", "unknown name 'speed'"),
        ("final > 3", "final.KEY"),
        ("final['crashed']", "Subscript"),
        ("episode_return + 1 > 0", "BinOp"),
        ("(lambda: 1)()", "calls are not allowed"),
        ("final.lane in [1, 2]", "no 'in' or 'is'"),
        ("final.name == 'car'", "only numbers and True/False"),
        ("episode_return >", "is not valid"),
        ("", "non-empty"),
        ("x" * 600, "over 500 characters"),
        ("[c for c in ()]", "ListComp"),
    ],
)
def test_bad_rules_are_one_line_errors(expression: str, fragment: str) -> None:
    with pytest.raises(UserError) as e:
        parse_success(expression, where="--success")
    msg = str(e.value)
    assert fragment in msg and msg.startswith("--success") and "\n" not in msg


def test_deep_nesting_evaluates_within_the_length_limit_and_is_refused_beyond() -> None:
    assert _judge("not " * 120 + "terminated", [(1.0, {})], end="truncated") is False  # even count of not
    assert _judge("-" * 249 + "1 < 0", [(1.0, {})]) is True  # an odd count of minus signs
    with pytest.raises(UserError, match="is not valid|over 500"):
        parse_success("(" * 240 + "terminated" + ")" * 240)


# --------------------------------------------------------------------------- Wilson


def test_wilson_interval_known_values() -> None:
    # Reference values of the Wilson score interval at z = 1.96 (Newcombe 1998, table I style).
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(1, 29) == pytest.approx((0.0061, 0.1718), abs=1e-4)


def test_wilson_interval_is_honest_at_the_edges_and_narrows_with_episodes() -> None:
    lo, hi = wilson_interval(50, 50)
    assert hi == 1.0 and lo < 0.95  # 50 successes out of 50 do not prove 100 %
    widths = [wilson_interval(n * 9 // 10, n)[1] - wilson_interval(n * 9 // 10, n)[0] for n in (10, 50, 500)]
    assert widths == sorted(widths, reverse=True)
    for k, n in ((3, 7), (0, 1), (49, 50)):
        lo, hi = wilson_interval(k, n)
        assert 0.0 <= lo <= k / n <= hi <= 1.0
    rate = SuccessRate.of([True, False, None, True, True])
    assert rate is not None and (rate.successes, rate.episodes) == (3, 4)
    assert rate.label() == "success 75 % [30, 95]" and SuccessRate.of([None, None]) is None


# --------------------------------------------------------------------------- descriptions


def test_curated_descriptions_define_success_where_it_is_obvious() -> None:
    want = {
        "LunarLander-v3": "last_reward >= 100",
        "LunarLanderContinuous-v3": "last_reward >= 100",
        "FrozenLake-v1": "episode_return > 0",
        "FrozenLake8x8-v1": "episode_return > 0",
        "MountainCar-v0": "terminated",
        "Acrobot-v1": "terminated",
        "Taxi-v4": "last_reward == 20",
        "CartPole-v1": "not terminated",
    }
    for env_id, fragment in want.items():
        desc = curated()[env_id]
        assert desc.success is not None and fragment in desc.success and desc.success_text, env_id
        assert desc.success in desc.to_prompt() and desc.to_dict()["success"] == desc.success
    assert curated()["Pendulum-v1"].success is None  # no agreed notion of a successful swing


def test_a_description_with_a_bad_rule_names_the_file_and_the_fix() -> None:
    data = dict(curated_files()["FrozenLake-v1.toml"])
    with pytest.raises(UserError, match=r"description X.toml: success expression .*unknown name 'goal'"):
        parse_description({**data, "success": "goal"}, "X.toml")
    with pytest.raises(UserError, match="success needs success_text"):
        parse_description({**data, "success_text": ""}, "X.toml")
    with pytest.raises(UserError, match="success_text without success"):
        parse_description({k: v for k, v in data.items() if k != "success"}, "X.toml")


# --------------------------------------------------------------------------- the episode loop


def test_frozenlake_success_rate_is_recorded_and_survives_the_store(tmp_path: Path) -> None:
    env = resolve_env("FrozenLake-v1")
    res = evaluate(FROZEN_TABLE, env, list(range(40)))
    reached = sum(1 for ep in res.episodes if ep.ret > 0)
    assert 0 < reached < 40  # the ice makes it succeed sometimes, not always
    assert [ep.success for ep in res.episodes] == [ep.ret > 0 for ep in res.episodes]
    assert res.success_rate == reached / 40 and res.success_ci95 == wilson_interval(reached, 40)
    with RunStore.create(tmp_path / "run", {"env": "FrozenLake-v1"}) as store:
        pid = store.add_program(FROZEN_TABLE, "n", [], "user", "init", 0.0, None, 0)
        store.add_evaluation(pid, "holdout", "holdout", res)
    with RunStore.open(tmp_path / "run") as store:
        row = store.evaluations()[0]
    back = StoredEvaluation.of(row)
    assert back.success_rate == res.success_rate and back.success_ci95 == res.success_ci95
    # An override is stricter than the description's rule, so it can only lower the rate.
    quick = evaluate(FROZEN_TABLE, with_success(env, "episode_return > 0 and length <= 10"), list(range(40)))
    assert quick.success_rate is not None and quick.success_rate < res.success_rate
    assert quick.returns == res.returns


def test_success_crosses_the_ray_wire_unchanged() -> None:
    from scriptrl.evaluate.executors_ray import result_from_wire, result_to_wire

    res = evaluate(FROZEN_TABLE, resolve_env("FrozenLake-v1"), list(range(10)))
    back = result_from_wire(json.loads(json.dumps(result_to_wire(res))))
    assert back.success_ci95 == res.success_ci95 and isinstance(back.success_ci95, tuple)
    assert [e.success for e in back.episodes] == [e.success for e in res.episodes]


def test_old_rows_and_states_without_success_still_read(tmp_path: Path) -> None:
    env = resolve_env("Pendulum-v1")  # no success defined: nothing is recorded
    res = evaluate("def policy(obs):\n    return [0.0]\n", env, [0, 1])
    assert res.success_rate is None and all(ep.success is None for ep in res.episodes)
    with RunStore.create(tmp_path / "run", {"env": "Pendulum-v1"}) as store:
        pid = store.add_program("x = 1\n", "n", [], "user", "init", 0.0, None, 0)
        store.add_evaluation(pid, "holdout", "holdout", res)
        row = store.evaluations()[0]
    assert all("success" not in e for e in row["digest"]) and StoredEvaluation.of(row).success_rate is None
    old = Champion.from_dict({"id": 3, "dev": 1.0, "holdout": 2.0, "ci95": [1.0, 3.0]})
    assert old is not None and old.success is None


def test_a_failed_episode_never_succeeds() -> None:
    env = resolve_env("CartPole-v1")  # success: not terminated
    late_crash = BALANCE.replace("return", "assert obs[0] < 9 and abs(obs[1]) < 0.05\n    return")
    res = evaluate(late_crash, env, [0, 1, 2])
    assert all(ep.end == "failure" for ep in res.episodes)
    assert res.success_rate == 0.0  # not terminated, yet no success: the policy raised


def test_lunarlander_crash_is_no_landing() -> None:
    res = evaluate("def policy(obs):\n    return 0\n", resolve_env("LunarLander-v3"), [0, 1, 2])
    assert all(ep.end == "terminated" for ep in res.episodes)  # `terminated` alone would say 100 %
    assert res.success_rate == 0.0


def test_a_rule_naming_keys_the_env_does_not_report_says_so() -> None:
    env = with_success(resolve_env("CartPole-v1"), "not final.crashed")
    res = evaluate(BALANCE, env, [0, 1])
    assert res.success_rate == 0.0 and res.success_note and "final.crashed (2 episodes)" in res.success_note


def test_a_language_model_is_told_how_often_its_parent_succeeded(tmp_path: Path) -> None:
    from scriptrl.generators.base import GenContext, ParentInfo
    from scriptrl.generators.llm.prompts import feedback

    env = resolve_env("FrozenLake-v1")
    res = evaluate(FROZEN_TABLE, env, list(range(12)))
    with RunStore.create(tmp_path / "run", {"env": "FrozenLake-v1"}) as store:
        pid = store.add_program(FROZEN_TABLE, "n", [], "user", "init", 0.0, None, 0)
        store.add_evaluation(pid, "train", "cheap", res)
        row = store.evaluations()[0]
    text = feedback(GenContext.for_env(env), ParentInfo(pid, FROZEN_TABLE, res.mean, row))
    reached = sum(1 for ep in res.episodes if ep.ret > 0)
    assert "Success (reached the goal (return 1) before" in text and f": {reached} of 12 episodes." in text


# --------------------------------------------------------------------------- the command line


def test_eval_prints_success_and_takes_an_override(tmp_path: Path) -> None:
    policy = tmp_path / "frozen.py"
    policy.write_text(FROZEN_TABLE)
    base = ("eval", str(policy), "--env", "FrozenLake-v1", "--episodes", "30")
    p = cli(*base)
    assert p.returncode == 0, p.stderr
    line = next(x for x in p.stdout.splitlines() if "success" in x)
    assert "%" in line and "/30)" in line
    j = cli(*base, "--json", "--success", "episode_return > 0 and length <= 10")
    d = json.loads(j.stdout)
    k = cli(*base, "--json")
    full = json.loads(k.stdout)
    assert d["success_rate"] < full["success_rate"] and d["mean"] == full["mean"]
    assert all("success" in e for e in d["episode_digests"])
    bad = cli(*base, "--success", "__import__('os')")
    assert bad.returncode == 2 and "calls are not allowed" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


# --------------------------------------------------------------------------- the search


def _champion(holdout: float, success: float | None) -> Champion:
    return Champion(1, holdout, holdout, [holdout - 1, holdout + 1], success=success)


def test_stop_rule_on_success_alone_or_on_both() -> None:
    def stop(target, target_success, champ):
        cfg = TrainConfig(env="FrozenLake-v1", target_success=target_success)
        kw = dict(iteration=1, env_steps=0, seconds=0.0, cost=0.0, population=1, idle_rounds=0)
        return stopping.check(cfg, champion=champ, target=target, **kw)

    assert stop(None, 0.9, _champion(0.1, 0.95)).kind == "target"  # success alone
    assert stop(None, 0.9, _champion(0.99, 0.85)) is None
    assert stop(0.5, 0.9, _champion(0.4, 0.95)) is None  # both given: both must hold
    hit = stop(0.5, 0.9, _champion(0.6, 0.95))
    assert hit.kind == "target" and "success 95 % >= 90 %" in hit.reason
    assert stop(0.5, None, _champion(0.6, None)).kind == "target"  # --target as before
    info = stopping.verdict(stopping.Stop("budget", "b"), _champion(0.6, 0.5), None, 0, 0.9)
    assert info["short_of_target"] and info["success"] == 0.5
    with pytest.raises(UserError, match="--target-success"):
        TrainConfig(env="FrozenLake-v1", target_success=1.5).check()


@pytest.mark.slow
def test_target_success_stops_a_frozenlake_search(tmp_path: Path) -> None:
    p = cli(
        "train", "FrozenLake-v1", "--target-success", "50%", "--max-seconds", "120",
        "--workers", "2", "--run-dir", str(tmp_path / "run"), "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert "target reached: holdout success" in summary["stop_reason"], summary
    assert summary["best_success"] >= 0.5 and len(summary["best_success_ci95"]) == 2
    best = Path(summary["best_policy"]).read_text()
    assert "# holdout success: " in best and "reached the goal" in best
    # the same rate, read back from the run folder by compare and the report
    from scriptrl.glassbox.compare import markdown_table, run_row
    from scriptrl.glassbox.report.html import build_report

    row = run_row(tmp_path / "run")
    assert row["success"] == summary["best_success"]
    assert f"{100 * row['success']:.0f} % [" in markdown_table(
        [row]
    ) and "success (holdout)" in markdown_table([row])
    assert 'id="success"' in build_report(tmp_path / "run")
    # an unreachable success target does not stop the search: its budget does
    q = cli(
        "train", "FrozenLake-v1", "--target-success", "0.999", "--max-iterations", "1",
        "--workers", "2", "--run-dir", str(tmp_path / "strict"), "--json",
    )  # fmt: skip
    strict = json.loads(q.stdout.strip().splitlines()[-1])
    assert (
        "iteration budget" in strict["stop_reason"] and "short of the target success" in strict["stop_reason"]
    )


def test_target_success_needs_a_rule_and_fails_before_any_run_folder(tmp_path: Path) -> None:
    p = cli("train", "Pendulum-v1", "--target-success", "0.9", "--run-dir", str(tmp_path / "x"))
    assert p.returncode == 2 and "--success EXPR" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    q = cli("train", "CartPole-v1", "--success", "final.crashed(", "--run-dir", str(tmp_path / "y"))
    assert q.returncode == 2 and "is not valid" in q.stderr
    r = cli("train", "CartPole-v1", "--target-success", "2", "--run-dir", str(tmp_path / "z"))
    assert r.returncode == 2 and "(0, 1]" in r.stderr
    assert not any((tmp_path / n).exists() for n in "xyz")
