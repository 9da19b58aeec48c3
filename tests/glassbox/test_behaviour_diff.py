"""scriptrl diff: where two versions act differently (proved, sampled), how often on holdout, and the
score change."""

import json
import subprocess
import sys

import pytest

from checkout import EXAMPLES, VERIFY_FAULTS

pytest.importorskip("z3")

from scriptrl.envs import resolve_env  # noqa: E402
from scriptrl.glassbox.behaviour_diff import behaviour_diff  # noqa: E402
from scriptrl.program import Program  # noqa: E402

A = Program.from_file(VERIFY_FAULTS / "correct.py")
PD = (
    "    push = 10.0 * angle + 2.0 * angular_velocity + 0.1 * position + 0.3 * velocity\n"
    "    return 1 if push > 0 else 0\n"
)
#: Version B: a new rule that pushes left when the cart is right of 1 m and the pole leans left.
B = Program(
    "def policy(obs):\n    position, velocity, angle, angular_velocity = obs\n"
    "    if position > 1.0 and angle < 0.0:\n        return 0\n" + PD,
    "b.py",
)
CARTPOLE = resolve_env("CartPole-v1")
pytestmark = pytest.mark.slow  # every test here starts solver and sandbox processes


def test_a_changed_rule_is_located_by_a_confirmed_witness_and_measured_on_holdout():
    r = behaviour_diff(A, B, CARTPOLE, episodes=20, samples=500)
    assert r.proof["verdict"] == "DIFFER", r.proof
    w = r.proof["witness"]
    assert w["observation"][0] > 1.0 and w["observation"][2] < 0.0 and w["action_a"] != w["action_b"]
    assert 0 < r.sampled["disagree"] < r.sampled["observations"] == 500
    assert all(ex["observation"][0] > 1.0 for ex in r.sampled["examples"])
    assert r.holdout["states"] > 1000 and 0 < r.holdout["disagree"] < r.holdout["states"]
    s = r.score
    assert s["b_minus_a"] == pytest.approx(s["b_mean"] - s["a_mean"])
    assert s["b_minus_a_ci95"][0] <= s["b_minus_a"] <= s["b_minus_a_ci95"][1]


def test_the_same_law_written_differently_is_proved_identical():
    same = Program.from_file(EXAMPLES / "cartpole_pd.py")
    r = behaviour_diff(A, same, CARTPOLE, episodes=3, samples=300)
    assert r.proof["verdict"] == "IDENTICAL", r.proof
    assert r.sampled["disagree"] == 0 and r.holdout["disagree"] == 0
    assert r.score["b_minus_a"] == 0.0


def test_an_untranslatable_version_is_still_sampled_and_the_proof_names_why():
    loop = Program(
        "def policy(obs):\n    k = 0\n    while k < 1:\n        k += 1\n    return 1 if obs[2] > 0 else 0\n"
    )
    r = behaviour_diff(A, loop, CARTPOLE, episodes=2, samples=300)
    assert (
        r.proof["verdict"] == "UNKNOWN" and "program B" in r.proof["detail"] and "while" in r.proof["detail"]
    )
    assert r.sampled["disagree"] > 0 and r.holdout["states"] > 0


def test_cli_diff_prints_one_json_report(tmp_path):
    (tmp_path / "b.py").write_text(B.source)
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "scriptrl",
            "diff",
            str(VERIFY_FAULTS / "correct.py"),
            str(tmp_path / "b.py"),
            "--env",
            "CartPole-v1",
            "--episodes",
            "3",
            "--samples",
            "200",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert report["proof"]["verdict"] == "DIFFER" and report["holdout"]["seeds"] == [1000, 1002]
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "scriptrl",
            "diff",
            str(tmp_path / "b.py"),
            str(tmp_path / "none.py"),
            "--env",
            "CartPole-v1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "not found" in p.stderr and p.stderr.count("\n") == 1
