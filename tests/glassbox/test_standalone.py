"""A champion file's length and whether it drives its environment alone (issue 14): real program
files, real CartPole episodes, a real isolated Python process per check, and one real short run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import scriptrl
from scriptrl.envs import resolve_env
from scriptrl.glassbox import standalone
from scriptrl.glassbox.standalone import MAX_LINES, check_champion_file, check_run

from checkout import EXAMPLES


@pytest.fixture(scope="module")
def cartpole():
    return resolve_env("CartPole-v1")


def test_a_real_example_program_runs_alone_and_is_short(cartpole) -> None:
    path = EXAMPLES / "cartpole_pd.py"
    got = check_champion_file(path, cartpole)
    assert got.self_contained and got.reason is None, got.reason
    assert got.lines == len(path.read_text().splitlines()) and got.within_60_lines
    # Two real episodes (the PD controller balances: each runs long), capped at MAX_STEPS.
    assert got.steps == standalone.MAX_STEPS


def test_a_class_policy_using_numpy_runs_alone(tmp_path, cartpole) -> None:
    path = tmp_path / "best_policy.py"
    path.write_text(
        "import numpy as np\n\n\nclass Policy:\n    def reset(self, seed):\n        self.t = 0\n\n"
        "    def act(self, obs):\n        self.t += 1\n"
        "        return int(np.dot(obs, [0.1, 0.3, 10.0, 2.0]) > 0)\n"
    )
    got = check_champion_file(path, cartpole)
    assert got.self_contained, got.reason
    assert got.steps > 2


RULE = "def policy(obs):\n    return 1 if obs[2] + 0.2 * obs[3] > 0 else 0\n"


@pytest.mark.parametrize(
    ("needs", "source", "message"),
    [
        ("a module beside it", "from helper import GAIN\n\n\n", "No module named 'helper'"),
        (
            "a data file beside it",
            "import json\nimport os\n\nGAIN = json.load(open(os.path.join(os.path.dirname(__file__), "
            "'gain.json')))\n\n\n",
            "FileNotFoundError",
        ),
    ],
)
def test_a_file_that_needs_its_run_folder_is_not_self_contained(tmp_path, cartpole, needs, source, message):
    run = tmp_path / "run"
    run.mkdir()
    (run / "helper.py").write_text("GAIN = 0.2\n")
    (run / "gain.json").write_text("0.2\n")
    path = run / "best_policy.py"
    path.write_text(source + RULE.replace("0.2 *", "GAIN *"))
    # In its folder the file works (run as a person runs it: python FILE) ...
    here = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy; print(runpy.run_path('best_policy.py')['policy']([0, 0, 0.1, 0]))",
        ],
        cwd=run,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(run)},
    )
    assert here.returncode == 0 and here.stdout.strip() == "1", here.stderr
    # ... alone it does not, and the check says why.
    got = check_champion_file(path, cartpole)
    assert not got.self_contained and got.steps == 0
    assert message in (got.reason or ""), got.reason


def test_an_invalid_action_fails_with_the_evaluators_reason(tmp_path, cartpole) -> None:
    path = tmp_path / "best_policy.py"
    path.write_text("def policy(obs):\n    return 1 if obs[0] < 0.01 else 7\n")
    got = check_champion_file(path, cartpole)
    assert not got.self_contained
    assert "out of range" in (got.reason or "") and got.reason.startswith(f"step {got.steps}:")


def test_a_file_that_hangs_is_ended_and_not_self_contained(tmp_path, cartpole, monkeypatch) -> None:
    monkeypatch.setattr(standalone, "TIMEOUT", 3.0)
    path = tmp_path / "best_policy.py"
    path.write_text("def policy(obs):\n    while True:\n        pass\n")
    got = check_champion_file(path, cartpole)
    assert not got.self_contained and got.steps == 0 and got.reason


def test_a_long_file_is_flagged_but_may_still_stand_alone(tmp_path, cartpole) -> None:
    body = "".join(f"    if obs[2] > {0.3 + i / 100:.2f}:\n        return 1\n" for i in range(MAX_LINES // 2))
    path = tmp_path / "best_policy.py"
    path.write_text("def policy(obs):\n" + body + "    return 1 if obs[2] + 0.2 * obs[3] > 0 else 0\n")
    got = check_champion_file(path, cartpole)
    assert got.lines == MAX_LINES + 2 and not got.within_60_lines
    assert got.self_contained, got.reason


@pytest.mark.slow
def test_the_best_policy_of_a_real_short_run_stands_alone(tmp_path) -> None:
    run = tmp_path / "run"
    result = scriptrl.train(
        "CartPole-v1",
        run_dir=str(run),
        workers=1,
        seed=0,
        max_iterations=1,
        initial_programs=4,
        holdout=(1000, 1005),
        audit=(2000, 2002),
    )
    best = Path(result.run_dir) / "best_policy.py"
    got = check_run(run)
    assert got is not None and got.path == str(best)
    assert got.lines == len(best.read_text().splitlines()) and got.lines > 10  # header and program
    assert got.self_contained and got.steps > 0, got.reason
    assert check_run(tmp_path) is None  # a folder without best_policy.py (a baseline's) has no check
