"""The learning loop end to end: real environments, real sandbox, real SQLite, real kill -9."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import scriptrl
from scriptrl.program import check_source

from checkout import EXAMPLES

pytestmark = pytest.mark.slow


def test_offline_search_solves_cartpole_to_500(tmp_path, cli):
    p = cli(
        "train",
        "CartPole-v1",
        "--generator",
        "offline",
        "--target",
        "500",
        "--max-seconds",
        "240",
        "--run-dir",
        str(tmp_path / "run"),
        "--json",
    )
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    for key in ("best_holdout", "best_dev", "env_steps", "seconds", "run_dir", "best_policy", "best_audit"):
        assert key in summary
    assert summary["best_holdout"] == 500.0, summary
    best = Path(summary["best_policy"]).read_text()
    assert best.startswith("# env: CartPole-v1") and "holdout mean" in best
    assert check_source(best) == [] and len(best.splitlines()) < 40


def test_python_api_mirrors_the_cli_and_is_reproducible(tmp_path):
    kw = dict(max_iterations=2, target=1e9, seed=3, workers=2)
    a = scriptrl.train("CartPole-v1", run_dir=str(tmp_path / "a"), **kw)
    b = scriptrl.train("CartPole-v1", run_dir=str(tmp_path / "b"), **kw)
    assert a.best_source == b.best_source and a.best_dev == b.best_dev and a.env_steps == b.env_steps
    assert a.best_policy.exists() and a.iterations == 2 and "iteration budget" in a.stop_reason
    with sqlite3.connect(a.run_dir / "run.sqlite") as db:
        gens = {g for (g,) in db.execute("select generator from programs")}
        temps = [t for (t,) in db.execute("select temperature from programs")]
        calls = db.execute("select count(*), sum(cost_usd) from calls").fetchone()
    assert {"offline.init"} <= gens and all(t is not None for t in temps)
    assert calls[0] > 0 and calls[1] == 0


def test_init_program_seeds_the_search(tmp_path):
    init = EXAMPLES / "cartpole_pd.py"
    run = scriptrl.train(
        "CartPole-v1", run_dir=str(tmp_path / "r"), init=str(init), target=500, max_iterations=3
    )
    with sqlite3.connect(run.run_dir / "run.sqlite") as db:
        first = db.execute("select generator, source from programs order by id limit 1").fetchone()
    assert first[0] == "user.init" and "push = 10.0 * angle" in first[1]
    assert run.best_holdout == 500.0


def _snapshot(db_path: Path) -> tuple[list, list]:
    with sqlite3.connect(db_path) as db:
        progs = db.execute("select id, norm_hash, source, parents from programs order by id").fetchall()
        evals = db.execute(
            "select id, program_id, split, stage, mean, env_steps, seeds from evaluations order by id"
        ).fetchall()
    return progs, evals


def test_kill_9_then_resume_loses_nothing_and_matches_an_uninterrupted_run(tmp_path, cli):
    args = [
        "CartPole-v1",
        "--max-iterations",
        "5",
        "--target",
        "1000",
        "--seed",
        "7",
        "--workers",
        "2",
        "--json",
    ]
    ref = cli("train", *args, "--run-dir", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr[-2000:]
    ref_summary = json.loads(ref.stdout.strip().splitlines()[-1])

    run = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "scriptrl", "train", *args, "--run-dir", str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    db = run / "run.sqlite"
    _wait_for_evaluations(proc, db, 40)  # kill once the search is past its initial population
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before_progs, before_evals = _snapshot(db)

    resumed = cli("train", "--resume", str(run), "--json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    after_progs, after_evals = _snapshot(db)

    assert after_progs[: len(before_progs)] == before_progs  # nothing lost or rewritten
    assert after_evals[: len(before_evals)] == before_evals
    hashes = [p[1] for p in after_progs]
    assert len(hashes) == len(set(hashes))  # no program stored twice
    keys = [(e[1], e[2], e[3], e[6]) for e in after_evals]
    assert len(keys) == len(set(keys))  # no program played the same seeds twice
    for key in ("best_dev", "best_holdout", "best_audit", "iterations"):
        assert summary[key] == ref_summary[key], key
    with sqlite3.connect(db) as c:
        kinds = [k for (k,) in c.execute("select kind from events order by id")]
    assert "resume" in kinds and kinds[-1] == "stop"


def test_killing_only_the_main_process_leaves_no_evaluators_behind(tmp_path):
    """kill -9 of `scriptrl train` alone (as an OOM killer or a scheduler does): its pool
    processes and their sandbox workers go with it instead of idling forever."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scriptrl",
            "train",
            "CartPole-v1",
            "--max-iterations",
            "50",
            "--target",
            "1000",
            "--workers",
            "2",
            "--run-dir",
            str(tmp_path / "run"),
            "--json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    group = proc.pid
    _wait_for_evaluations(proc, tmp_path / "run" / "run.sqlite", 2)  # until the pool is evaluating
    members = [int(d) for d in os.listdir("/proc") if d.isdigit() and _pgid(int(d)) == group]
    assert len(members) > 2  # the main process, its pool and sandbox workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(group, signal.SIGKILL)
        pytest.fail("evaluator processes outlived the killed run")


def _wait_for_evaluations(proc: subprocess.Popen, db: Path, n: int) -> None:
    """Wait until a running `scriptrl train` has stored ``n`` training-stream evaluations; it must
    still run."""
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if db.exists():
            try:
                with sqlite3.connect(db) as c:
                    if c.execute("select count(*) from evaluations where split='train'").fetchone()[0] >= n:
                        break
            except sqlite3.Error:
                pass
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def test_bad_train_input_is_one_line(tmp_path, cli):
    for args, fragment in [
        (("train", "NoSuchEnv-v1", "--run-dir", str(tmp_path / "x")), "unknown environment"),
        (("train", "CartPole-v1", "--max-iterations", "0"), "--max-iterations"),
        (("train", "--resume", str(tmp_path / "missing")), "missing"),
        (("train", "CartPole-v1", "--init", str(tmp_path / "nope.py")), "not found"),
    ]:
        p = cli(*args)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and fragment in p.stderr, p.stderr
    assert not (tmp_path / "x").exists()


def test_runs_and_show(tmp_path, cli):
    scriptrl.train(
        "CartPole-v1", run_dir=str(tmp_path / "runs" / "one"), max_iterations=1, target=1e9, workers=1
    )
    p = cli("runs", str(tmp_path / "runs"), "--json")
    assert p.returncode == 0 and json.loads(p.stdout)[0]["env"] == "CartPole-v1"
    s = cli("show", str(tmp_path / "runs" / "one"))
    assert s.returncode == 0 and "def policy" in s.stdout
