"""explain on real environments: line counts, the line and conditions behind each action, the audit log,
tracing inside the sandbox, and never in train or eval."""

import json
import subprocess
import sys
import textwrap

import pytest

from scriptrl.envs import resolve_env
from scriptrl.glassbox.trace import TraceWorker, _clean_trace, explain
from scriptrl.program import Program
from scriptrl.sandbox.client import SandboxWorker

RULES = textwrap.dedent(
    '''
    """CartPole-v1: a guard for large angles, then a linear rule."""


    def policy(obs):
        position, velocity, angle, angular_velocity = obs
        if angle > 0.1 and angular_velocity > 0.0:
            return 1
        if angle < -0.1:
            return 0
        score = 0.1 * position + 0.3 * velocity + 10.0 * angle + 2.0 * angular_velocity
        return 1 if score > 0.0 else 0
    '''
).lstrip()


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.py"
    path.write_text(RULES)
    return path


def _line(text: str) -> int:
    return next(i for i, line in enumerate(RULES.splitlines(), start=1) if text in line)


def test_explain_names_the_lines_and_conditions_that_decide_each_action(rules_file, tmp_path, cli):
    log = tmp_path / "decisions.jsonl"
    p = cli(
        "explain",
        str(rules_file),
        "--env",
        "CartPole-v1",
        "--episodes",
        "3",
        "--seed",
        "5",
        "--log",
        str(log),
        "--json",
    )
    assert p.returncode == 0, p.stderr
    ex = json.loads(p.stdout.strip().splitlines()[-1])
    assert ex["seeds"] == [5, 6, 7] and ex["decisions"] == sum(e["length"] for e in ex["episodes"]) == 1500
    runs = {int(k): v for k, v in ex["line_runs"].items()}
    # Every decision unpacks the observation and tests the first guard; the linear rule decides them all.
    assert runs[_line("position, velocity")] == 1500 and runs[_line("if angle > 0.1")] == 1500
    assert _line("        return 1") not in runs and _line("        return 0") not in runs
    final = _line("return 1 if score")
    by_action = {r["action"]: r for r in ex["rules"]}
    assert set(by_action) == {0, 1}
    for action, rule in by_action.items():
        assert rule["line"] == final and rule["code"] == "return 1 if score > 0.0 else 0"
        assert rule["action_name"] == ("push_right" if action == 1 else "push_left")
        conds = {(c["line"], c["expr"]): c["value"] for c in rule["conditions"]}
        # The branch of the conditional expression that produced the action, and the guards that did not fire.
        assert conds[(final, "score > 0.0")] is (action == 1)
        assert conds[(_line("if angle > 0.1"), "angle > 0.1 and angular_velocity > 0.0")] is False
        assert conds[(_line("if angle < -0.1"), "angle < -0.1")] is False
    assert sum(r["count"] for r in ex["rules"]) == 1500
    assert ex["isolation"]["process"].startswith("on") and ex["isolation"]["seccomp"].startswith("on")

    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 1500
    first = records[0]
    assert {"episode", "seed", "step", "obs", "action", "line", "code", "conditions", "lines"} <= set(first)
    assert first["seed"] == 5 and first["step"] == 0 and len(first["obs"]) == 4 and first["line"] == final
    # In the order Python evaluated them: `and` stopped at its first operand.
    assert [c["expr"] for c in first["conditions"]] == [
        "angle > 0.1",
        "angle > 0.1 and angular_velocity > 0.0",
        "angle < -0.1",
        "score > 0.0",
    ]
    assert first["action"] == int(first["conditions"][-1]["value"])
    assert first["lines"] == [
        _line("position, velocity"),
        _line("if angle > 0.1"),
        _line("if angle < -0.1"),
        _line("score = "),
        final,
    ]


def test_explain_table_reads_as_rules(rules_file, cli):
    p = cli("explain", str(rules_file), "--env", "CartPole-v1", "--episodes", "2")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "How often each line ran" in out and "Which line chose each action" in out
    assert "1 (push_right)" in out and "0 (push_left)" in out
    assert f"line {_line('return 1 if score')}: score > 0.0 is True" in out
    assert "in the sandbox" in out


def test_explain_sees_which_return_fires_when_several_do():
    # Under a stronger threshold both guards fire: each return is its own rule.
    source = RULES.replace("angle > 0.1 and", "angle > 0.02 and").replace("angle < -0.1", "angle < -0.02")
    ex = explain(source, "CartPole-v1", episodes=2, seed=0)
    lines = {r.line for r in ex.rules}
    assert {_line("        return 1"), _line("        return 0"), _line("return 1 if score")} <= lines
    guard = next(r for r in ex.rules if r.line == _line("        return 0"))
    assert (
        guard.action == 0
        and {"line": _line("if angle < -0.1"), "expr": "angle < -0.02", "value": True} in guard.conditions
    )


def test_explain_a_stateful_policy_and_a_discrete_observation_space():
    source = textwrap.dedent(
        """
        class Policy:
            def reset(self, seed):
                self.t = 0

            def act(self, obs):
                self.t += 1
                if obs in (5, 7, 11, 12):
                    return 1
                return 2 if self.t % 2 else 1
        """
    )
    ex = explain(source, "FrozenLake-v1", episodes=4)
    assert ex.decisions > 0 and all(r.action in (1, 2) for r in ex.rules)
    assert any(r.code == "return 2 if self.t % 2 else 1" for r in ex.rules)


def test_exceptions_and_invalid_actions_are_rules_too():
    source = "def policy(obs):\n    if obs[2] > 0.03:\n        raise ValueError('leaning')\n    return 1\n"
    ex = explain(source, "CartPole-v1", episodes=3)
    names = {r.action_name for r in ex.rules}
    assert "exception" in names
    assert any(e["end"] == "failure" and "leaning" in e["reason"] for e in ex.episodes)


def test_the_tracing_worker_is_as_isolated_as_the_evaluation_worker():
    codec = {"kind": "box", "dtype": "float32", "shape": [4]}
    layers = []
    for cls in (SandboxWorker, TraceWorker):
        w = cls()
        w.start()
        try:
            layers.append(w.load("def policy(obs):\n    return 0\n", "p.py", codec, 0, None))
        finally:
            w.close()
    assert layers[0] == layers[1] and layers[0]["process"].startswith("on")


def test_untrusted_traces_are_bounded_and_checked():
    junk = {
        "l": [[0, 5], [3, -1], ["x", 1], [2, 7]],
        "s": [1, 99, "a", 2],
        "c": [[0, 1], [99, 1], [1, 5], "z"],
        "r": 999,
        "e": "yes",
    }
    t = _clean_trace(junk, n_sites=2, n_lines=10)
    assert t == {"l": [(2, 7)], "s": [1, 2], "c": [(0, True)], "v": [], "r": None, "e": False}
    assert _clean_trace("not a dict", 2, 10)["l"] == []


def test_train_and_eval_never_load_the_tracer():
    code = textwrap.dedent(
        """
        import sys
        from scriptrl.evaluate import evaluate
        r = evaluate("def policy(obs):\\n    return 1 if obs[2] > 0 else 0\\n", "CartPole-v1", seeds=[0, 1])
        assert r.mean > 0 and sys.gettrace() is None
        assert "scriptrl.sandbox.trace_worker" not in sys.modules
        assert "scriptrl.glassbox.trace" not in sys.modules
        print("ok")
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_explain_refuses_bad_input_in_one_line(tmp_path, cli):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\ndef policy(obs):\n    return 0\n")
    p = cli("explain", str(bad), "--env", "CartPole-v1")
    assert p.returncode == 2 and "import of 'os' is not allowed" in p.stderr and p.stderr.count("\n") == 1
    p = cli("explain", str(bad), "--env", "NoSuchEnv-v9")
    assert p.returncode == 2
    ok = tmp_path / "ok.py"
    ok.write_text("def policy(obs):\n    return 0\n")
    p = cli(
        "explain", str(ok), "--env", "CartPole-v1", "--log", str(tmp_path / "no" / "such" / "dir" / "x.jsonl")
    )
    assert p.returncode == 2 and "cannot write the decision log" in p.stderr
    assert Program.from_file(ok).entry_kind == "function" and resolve_env("CartPole-v1").id == "CartPole-v1"
