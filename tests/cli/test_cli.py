"""The command line as a person uses it: real subprocesses, real environments."""

import json

import pytest

from checkout import EXAMPLES

PD = str(EXAMPLES / "cartpole_pd.py")


def test_eval_json_has_the_promised_fields(cli):
    p = cli("eval", PD, "--env", "CartPole-v1", "--split", "dev", "--episodes", "3", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout.strip().splitlines()[-1])
    for key in (
        "mean",
        "std",
        "episodes",
        "env_steps",
        "returns",
        "failures",
        "ci95",
        "isolation",
        "gymnasium_version",
    ):
        assert key in d
    assert d["episodes"] == 3 and d["mean"] == 500.0 and d["seeds"] == [0, 1, 2]


def test_eval_table_by_default(cli):
    p = cli("eval", PD, "--env", "CartPole-v1", "--episodes", "2")
    assert p.returncode == 0 and "mean return" in p.stdout and "500.00" in p.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("eval", "/nonexistent/p.py", "--env", "CartPole-v1"), "not found"),
        (("eval", PD, "--env", "NoSuchEnv-v0"), "unknown environment"),
        (("eval", PD, "--env", "CartPole-v1", "--episodes", "0"), "--episodes"),
        (("eval", PD, "--env", "CartPole-v1", "--episodes", "abc"), "--episodes"),
        (("eval", PD, "--env", "CartPole-v1", "--split", "train"), "--split"),
        (("eval", PD), "--env"),
        (("frobnicate",), "invalid choice"),
        (
            ("train", "CartPole-v1", "--generator", "llm", "--api-key-env", "sk-live-abc123"),
            "NAME of an environment",
        ),
        (("train", "CartPole-v1", "--llm-timeout", "0"), "--llm-timeout"),
    ],
)
def test_bad_input_is_one_line_exit_2_no_traceback(args, fragment, cli):
    p = cli(*args)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert fragment in p.stderr


def test_syntax_error_file_names_the_line(tmp_path, cli):
    bad = tmp_path / "bad.py"
    bad.write_text("def policy(obs):\n    return (\n")
    p = cli("eval", str(bad), "--env", "CartPole-v1")
    assert p.returncode == 2 and "line" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_retired_id_notice_is_one_line(cli):
    p = cli("eval", PD, "--env", "LunarLander-v2", "--episodes", "1", "--json")
    assert p.returncode == 0
    assert p.stderr.count("\n") == 1 and "LunarLander-v3" in p.stderr
    assert json.loads(p.stdout)["env_id"] == "LunarLander-v3"


def test_envs_lists_builtins(cli):
    p = cli("envs")
    assert p.returncode == 0
    for env_id in ("CartPole-v1", "LunarLander-v3", "FrozenLake8x8-v1", "Taxi-v4", "Blackjack-v1"):
        assert env_id in p.stdout
    one = cli("envs", "CartPole-v1")
    assert one.returncode == 0 and "pole" in one.stdout.lower()


def test_doctor_reports_layers(cli):
    p = cli("doctor", "--json")
    d = json.loads(p.stdout)
    # The rest of the suite runs generated code in the sandbox, which needs the required layers:
    # on any machine where it passes, doctor must say ok and exit 0.
    assert d["ok"] is True and p.returncode == 0
    assert set(d["required"]) <= set(d["isolation"])
