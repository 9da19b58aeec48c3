"""`scriptrl compare`: figures read back from run folders, for searches and baselines alike."""

import json
import time

import pytest

from scriptrl.glassbox.compare import compare, markdown_table, run_curve, run_row
from scriptrl.store import CallRecord, RunStore


def _result(mean: float, steps: int, seeds: list[int], half: float = 1.0) -> dict:
    return {
        "returns": [mean] * len(seeds),
        "mean": mean,
        "std": 0.0,
        "ci_lo": mean - half,
        "ci_hi": mean + half,
        "median": mean,
        "min": mean,
        "max": mean,
        "env_steps": steps,
        "seconds": 0.01,
        "seeds": seeds,
    }


def _program(store: RunStore, i: int, gen: str = "offline.mutate") -> int:
    return store.add_program(f"def policy(obs):\n    return {i % 2}\n", f"h{i}", [], gen, "x", 1.0, 0, i)


def make_search_run(path, tokens: int = 0, cost: float = 0.0):
    """A search that crosses 475 on holdout at its second champion, after 300 search steps."""
    with RunStore.create(path, {"env": "CartPole-v1", "generator": "llm", "model": "tiny", "seed": 0}) as s:
        s.add_event("start", {"env": "CartPole-v1"})
        a = _program(s, 1)
        s.add_evaluation(a, "dev", "cheap", _result(100.0, 50, [0, 1, 2]))
        s.add_evaluation(a, "dev", "full", _result(120.0, 100, list(range(20))))
        s.add_evaluation(a, "holdout", "holdout", _result(110.0, 1000, list(range(1000, 1050))))
        s.add_event(
            "promotion", {"iteration": 0, "id": a, "dev": 120.0, "holdout": 110.0, "ci95": [100.0, 120.0]}
        )
        s.add_event("tune", {"iteration": 1, "env_steps": 50})
        b = _program(s, 2)
        s.add_evaluation(b, "dev", "full", _result(490.0, 100, list(range(20))))
        s.add_evaluation(b, "holdout", "holdout", _result(480.0, 1000, list(range(1000, 1050)), half=5.0))
        s.add_event(
            "promotion", {"iteration": 1, "id": b, "dev": 490.0, "holdout": 480.0, "ci95": [475.0, 485.0]}
        )
        s.add_evaluation(b, "audit", "audit", _result(470.0, 1000, list(range(2000, 2050))))
        s.add_call(
            CallRecord(
                "llm", 1.0, prompt_tokens=tokens, completion_tokens=tokens, cost_usd=cost, program_id=b
            )
        )
        s.save_state({"seconds": 12.5, "iteration": 1})
        s.add_event("stop", {"reason": "target reached"})
    return path


def make_baseline_run(path):
    """A baseline whose second checkpoint (4,000 training steps) is the first to reach 475."""
    cfg = {"env": "CartPole-v1", "generator": "ppo", "kind": "baseline", "algo": "ppo", "seed": 0}
    with RunStore.create(path, cfg) as s:
        s.add_event("start", {"env": "CartPole-v1"})
        for i, (steps, dev, hold) in enumerate([(2000, 200.0, 190.0), (4000, 500.0, 498.0)], start=1):
            pid = _program(s, i, "ppo")
            s.add_evaluation(pid, "train", "train", _result(50.0, 2000, []))
            s.add_evaluation(pid, "dev", "curve", _result(dev, 5000, list(range(20))))
            s.add_event("curve", {"program": pid, "env_steps": steps, "seconds": steps / 1000, "dev": dev})
            s.add_evaluation(pid, "holdout", "holdout", _result(hold, 20000, list(range(1000, 1050))))
            s.add_event(
                "promotion",
                {
                    "iteration": i,
                    "id": pid,
                    "dev": dev,
                    "holdout": hold,
                    "ci95": [hold - 2, hold + 2],
                    "env_steps": steps,
                    "seconds": steps / 1000,
                },
            )
        s.add_evaluation(pid, "audit", "audit", _result(499.0, 20000, list(range(2000, 2050))))
        s.add_event("stop", {"reason": "target reached", "env_steps": 4000, "seconds": 4.0})
    return path


def test_search_row_counts_search_steps_and_its_first_champion_at_threshold(tmp_path):
    row = run_row(make_search_run(tmp_path / "s", tokens=300, cost=0.02))
    assert row["method"] == "scriptrl llm (tiny)" and row["kind"] == "scriptrl"
    assert row["holdout"] == 480.0 and row["holdout_ci"] == 5.0 and row["audit"] == 470.0
    assert row["threshold"] == 475.0  # CartPole's solved threshold, from its description
    assert row["env_steps"] == 50 + 100 + 50 + 100  # cheap, full, tuning, full; holdout/audit left out
    assert row["steps_to_threshold"] == 300
    assert row["seconds"] == 12.5 and row["seconds_to_threshold"] >= 0
    assert row["tokens"] == 600 and row["cost_usd"] == pytest.approx(0.02)


def test_baseline_row_counts_training_steps_only(tmp_path):
    row = run_row(make_baseline_run(tmp_path / "b"))
    assert row["method"] == "PPO" and row["kind"] == "baseline"
    assert (
        row["env_steps"] == 4000 and row["steps_to_threshold"] == 4000 and row["seconds_to_threshold"] == 4.0
    )
    assert row["holdout"] == 498.0 and row["audit"] == 499.0 and row["tokens"] == 0
    assert run_curve(RunStore.open(tmp_path / "b"))["points"] == [(2000, 2.0, 200.0), (4000, 4.0, 500.0)]


def test_threshold_override_and_never_reached(tmp_path):
    rows = compare([make_search_run(tmp_path / "s"), make_baseline_run(tmp_path / "b")], threshold=499.0)
    assert [r["steps_to_threshold"] for r in rows] == [None, None]
    table = markdown_table(rows)
    assert table.count("not reached") == 2 and "| CartPole-v1 | PPO | 498.00 ± 2.00 |" in table


def test_search_curve_is_best_dev_so_far_against_cumulative_steps(tmp_path):
    with RunStore.open(make_search_run(tmp_path / "s")) as s:
        curve = run_curve(s)
    assert [(p[0], p[2]) for p in curve["points"]] == [(150, 120.0), (300, 490.0)]
    assert [(p[0], p[2]) for p in curve["promotions"]] == [(150, 110.0), (300, 480.0)]


def test_resume_gap_is_not_counted_as_learning_time(tmp_path):
    path = tmp_path / "r"
    with RunStore.create(path, {"env": "CartPole-v1", "generator": "offline"}) as s:
        s.add_event("start", {})
        a = _program(s, 1)
        s.add_evaluation(a, "dev", "full", _result(480.0, 100, list(range(20))))
        time.sleep(0.3)  # the run is "down" here
        s.add_event("resume", {})
        s.add_evaluation(a, "holdout", "holdout", _result(480.0, 1000, list(range(1000, 1050))))
        s.add_event(
            "promotion", {"iteration": 1, "id": a, "dev": 480.0, "holdout": 480.0, "ci95": [479, 481]}
        )
    row = run_row(path)
    assert row["steps_to_threshold"] == 100 and row["seconds_to_threshold"] < 0.25


def test_cli_table_json_and_plot(tmp_path, cli):
    s, b = make_search_run(tmp_path / "s"), make_baseline_run(tmp_path / "b")
    p = cli("compare", str(s), str(b), "-o", str(tmp_path / "c.png"))
    assert p.returncode == 0, p.stderr
    assert "PPO" in p.stdout and "scriptrl llm" in p.stdout and "498.00 ± 2.00" in p.stdout
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    p = cli("compare", str(s), str(b), "--json")
    rows = json.loads(p.stdout)
    assert [r["method"] for r in rows] == ["scriptrl llm (tiny)", "PPO"]


def test_cli_bad_input_is_one_line(tmp_path, cli):
    p = cli("compare", str(tmp_path / "nope"))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "not a folder" in p.stderr
    p = cli("compare")
    assert p.returncode == 2


@pytest.mark.slow
def test_scriptrl_and_ppo_side_by_side_on_the_same_seeds(tmp_path, cli):
    """The issue's 'done when': a real search and a real PPO run, one table."""
    pytest.importorskip(
        "torch", reason="the scriptrl[baselines] extra is not installed (make test installs it)"
    )
    search = tmp_path / "search"
    ppo = tmp_path / "ppo"
    p = cli(
        "train", "CartPole-v1", "--run-dir", str(search), "--max-iterations", "1", "--workers", "1", "--json"
    )
    assert p.returncode == 0, p.stderr[-2000:]
    p = cli(
        "baseline",
        "--algo",
        "ppo",
        "CartPole-v1",
        "--run-dir",
        str(ppo),
        "--max-env-steps",
        "5000",
        "--eval-every",
        "2500",
        "--json",
    )
    assert p.returncode == 0, p.stderr[-2000:]
    p = cli("compare", str(search), str(ppo), "--json")
    assert p.returncode == 0, p.stderr
    rows = {r["method"]: r for r in json.loads(p.stdout)}
    assert set(rows) == {"scriptrl offline", "PPO"}
    for r in rows.values():
        assert r["env"] == "CartPole-v1" and r["holdout"] is not None and r["audit"] is not None
    assert 5000 <= rows["PPO"]["env_steps"] < 5000 + 8 * 32  # PPO finishes its rollout (8 envs x 32 steps)
    with RunStore.open(search) as s, RunStore.open(ppo) as b:
        for store in (s, b):  # the same holdout and audit seeds, through the same evaluator
            assert {tuple(e["seeds"]) for e in store.evaluations(split="holdout")} == {
                tuple(range(1000, 1050))
            }
            assert {tuple(e["seeds"]) for e in store.evaluations(split="audit")} == {tuple(range(2000, 2050))}
