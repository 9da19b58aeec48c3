"""The Ray executor against a real Ray head started here, compared with the local pool.

The head is a real ``ray start --head`` (2 CPUs, on this machine) in its own session with
its own temp dir, ports and token, so it never touches another Ray on the machine; it is
stopped by PID afterwards. Without Ray installed the test is skipped on a workstation but
fails in CI, where ``make test`` installs ``scriptrl[ray]``: a skipped test would hide a
broken install step.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import scriptrl
from scriptrl.envs import resolve_env
from scriptrl.evaluate import EvalConfig, evaluate
from scriptrl.evaluate.executors import EvalJob, LocalExecutor
from scriptrl.evaluate.executors_ray import batch_size, result_from_wire, result_to_wire

pytestmark = pytest.mark.slow

TRAIN = dict(max_iterations=2, target=1e9, seed=5)


def test_results_cross_the_wire_as_plain_data_and_come_back_equal():
    res = evaluate(
        "def policy(obs):\n    return 1 if obs[2] > 0 else 0\n", "CartPole-v1", [0, 1], EvalConfig()
    )
    wire = result_to_wire(res)
    assert json.loads(json.dumps(wire)) == json.loads(json.dumps(wire))  # builtins only: JSON round-trips
    assert result_from_wire(wire) == res


def test_batches_give_every_actor_two_calls_and_stay_small():
    assert batch_size(1, 2) == 1
    assert batch_size(8, 2) == 2
    assert batch_size(24, 2) == 6
    assert batch_size(1000, 2) == 8


def _ray_available() -> bool:
    if importlib.util.find_spec("ray") is not None:
        return True
    if os.environ.get("CI"):
        pytest.fail("Ray is not installed in CI: `make test` must install scriptrl[ray]")
    pytest.skip("Ray is not installed (pip install -e '.[ray]')")
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_pids(sid: int) -> list[int]:
    """Every process of the head's session: Ray's workers get their own process groups but
    stay in the session, so this finds them all without touching any other Ray."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[3]) == sid:
                pids.append(int(entry))
    return pids


@pytest.fixture(scope="module")
def ray_head():
    _ray_available()
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}  # a private cluster
    cmd = [
        str(Path(sys.executable).with_name("ray")),
        "start",
        "--head",
        "--block",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--num-cpus",
        "2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        "--temp-dir",
        tmp,
        "--object-store-memory",
        str(200 * 2**20),
    ]
    # Ports with fixed defaults would clash with another Ray on this machine.
    for flag in (
        "--dashboard-port",
        "--ray-client-server-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--metrics-export-port",
        "--runtime-env-agent-port",
    ):
        cmd += [flag, str(_free_port())]
    log_path = Path(tmp) / "head.log"
    with pytest.MonkeyPatch.context() as mp, open(log_path, "w") as log:
        for k, v in env.items():
            mp.setenv(k, v)  # before ray is imported in this process, and inherited by the CLI below
        head = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **env}
        )
        try:
            deadline = time.monotonic() + 90
            while "Ray runtime started" not in log_path.read_text():
                if head.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("ray start --head failed:\n" + log_path.read_text()[-3000:])
                time.sleep(0.2)
            yield {"address": f"127.0.0.1:{port}", "pid": head.pid}
        finally:
            for pid in _session_pids(head.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            head.wait(timeout=30)
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    return scriptrl.train(
        "CartPole-v1", run_dir=str(tmp_path_factory.mktemp("local") / "run"), workers=2, **TRAIN
    )


def test_train_through_a_ray_head_gives_the_local_pool_scores(ray_head, local_run, tmp_path):
    from scriptrl.evaluate.executors_ray import RayExecutor

    ex = RayExecutor(workers=2, address=ray_head["address"])
    try:
        # The evaluators are Ray's worker processes, started by the head, not this process.
        assert len(ex.nodes) == 2
        for node in ex.nodes:
            assert int(node["pid"]) in _session_pids(ray_head["pid"])

        env = resolve_env("CartPole-v1")
        sources = [
            "def policy(obs):\n    return 1 if obs[2] + 0.4 * obs[3] > 0 else 0\n",
            "import random\ndef policy(obs):\n    return random.randrange(2)\n",  # seeded from the first seed
            "class Policy:\n    def __init__(self):\n        self.t = 0\n"
            "    def act(self, obs):\n        self.t += 1\n        return self.t % 2\n",
            "def policy(obs):\n    raise ValueError('boom')\n",
        ]
        jobs = [EvalJob(s, env, (7, 8, 9), "dev", f"p{k}.py") for k, s in enumerate(sources * 3)]
        local = LocalExecutor(2)
        try:
            expected = local.map(jobs)
        finally:
            local.close()
        got = ex.map(jobs)
        assert [r.returns for r in got] == [r.returns for r in expected]
        assert [r.lengths for r in got] == [r.lengths for r in expected]
        assert [[f["reason"] for f in r.failures] for r in got] == [
            [f["reason"] for f in r.failures] for r in expected
        ]
        assert [[e.tail for e in r.episodes] for r in got] == [[e.tail for e in r.episodes] for r in expected]
        assert "boom" in got[3].failures[0]["reason"]
        assert all(v.startswith("on") for k, v in got[0].isolation.items() if k in ("process", "rlimits"))

        # An evaluator that dies (a lost node, an OOM kill) costs time, not results.
        os.kill(int(ex.nodes[0]["pid"]), signal.SIGKILL)
        again = ex.map(jobs)
        assert [r.returns for r in again] == [r.returns for r in expected]
        assert len(ex._actors) == 1  # its calls failed over to the other one

        run = scriptrl.train("CartPole-v1", run_dir=str(tmp_path / "ray"), executor=ex, workers=2, **TRAIN)
        replaced = len(ex._actors)
    finally:
        ex.close()
    print("actors after the train:", replaced)
    assert (run.best_dev, run.best_holdout, run.env_steps) == (
        local_run.best_dev,
        local_run.best_holdout,
        local_run.env_steps,
    )
    assert run.best_source == local_run.best_source and run.iterations == 2


def test_cli_train_with_executor_ray(ray_head, local_run, tmp_path):
    run_dir = tmp_path / "cli"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "scriptrl",
            "train",
            "CartPole-v1",
            "--executor",
            "ray",
            "--ray-address",
            ray_head["address"],
            "--workers",
            "2",
            "--max-iterations",
            "2",
            "--target",
            "1e9",
            "--seed",
            "5",
            "--run-dir",
            str(run_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert (summary["best_dev"], summary["best_holdout"], summary["env_steps"]) == (
        local_run.best_dev,
        local_run.best_holdout,
        local_run.env_steps,
    )
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        config = json.loads(db.execute("select json from config").fetchone()[0])
    assert config["executor"] == "ray" and config["ray_address"] == ray_head["address"]
