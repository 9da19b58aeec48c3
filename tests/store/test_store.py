"""The run store on real SQLite files: round trips, transactions, atomic files and kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from scriptrl.errors import UserError
from scriptrl.evaluate import Episode, EvalResult
from scriptrl.glassbox.report.runs_view import print_runs, print_show
from scriptrl.store import SCHEMA_VERSION, CallRecord, RunStore, list_runs

CONFIG = {"env": "CartPole-v1", "generator": "mutate", "seed": 7, "budget": {"programs": 100}}
SRC = "def policy(obs):\n    return 1 if obs[2] > 0 else 0\n"


def make_result(returns=(10.0, 20.0, 30.0), split="dev", seed0=0) -> EvalResult:
    returns = [np.float64(r) for r in returns]
    n = len(returns)
    eps = [
        Episode(
            seed=seed0 + i,
            ret=r,
            length=int(r),
            end="truncated" if i else "terminated",
            reason=None,
            tail=[{"obs": [np.float32(0.5), 1.0], "action": np.int64(1)}],
            action_summary={"histogram": [np.int64(3), 4]},
        )
        for i, r in enumerate(returns)
    ]
    mean = float(np.mean(returns)) if n else float("nan")
    return EvalResult(
        env_id="CartPole-v1",
        env_label="CartPole-v1",
        gymnasium_version="1.4.0",
        split=split,
        seeds=[seed0 + i for i in range(n)],
        returns=returns,
        lengths=[int(r) for r in returns],
        mean=np.float64(mean),
        std=np.float64(np.std(returns)) if n else 0.0,
        ci95=(np.float64(mean - 1), mean + 1),
        median=mean,
        min=min(returns) if n else float("nan"),
        max=max(returns) if n else float("nan"),
        env_steps=int(sum(returns)),
        seconds=0.25,
        failures=[{"seed": seed0, "step": 3, "reason": "exception: boom"}],
        episodes=eps,
        isolation={"process": "on", "seccomp": "on (strict)"},
        program_sha256="abc",
    )


@pytest.fixture
def store(tmp_path):
    s = RunStore.create(tmp_path / "run", CONFIG)
    yield s
    s.close()


def add(store: RunStore, source: str = SRC, norm: str = "n1", **kw) -> int:
    args = dict(parents=[], generator="mutate", change="flip sign", temperature=0.7, island=0, iteration=1)
    args.update(kw)
    return store.add_program(source, norm, **args)


# ----------------------------------------------------------------- create / open


def test_create_then_open_keeps_config_and_schema(tmp_path):
    run = tmp_path / "deep" / "run"
    s = RunStore.create(run, {**CONFIG, "ratio": np.float64(0.5), "pair": (1, 2), "bad": float("nan")})
    assert (run / "run.sqlite").is_file() and s.run_dir == run
    s.close()
    s.close()  # idempotent
    s = RunStore.open(run)
    assert s.config["ratio"] == 0.5 and s.config["pair"] == [1, 2] and s.config["bad"] is None
    assert s.config["budget"] == {"programs": 100}
    meta = s.meta()
    assert meta["schema_version"] == str(SCHEMA_VERSION) and meta["created"].startswith("20")
    assert s._db().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s._db().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    indexes = {r[0] for r in s._db().execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"programs_norm_hash", "evaluations_program_split"} <= indexes
    s.close()


def test_create_on_existing_run_is_a_user_error(store):
    with pytest.raises(UserError, match="already holds a run.*--resume"):
        RunStore.create(store.run_dir, CONFIG)
    assert store.programs() == []  # the existing run is untouched and still usable
    add(store)


def test_create_in_existing_empty_folder_is_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    RunStore.create(tmp_path / "empty", CONFIG).close()
    reopened = RunStore.open(tmp_path / "empty")
    try:
        assert reopened.config["env"] == CONFIG["env"] and reopened.programs() == []
    finally:
        reopened.close()


def test_create_refuses_a_file_and_unstorable_config(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        RunStore.create(tmp_path / "f", CONFIG)
    with pytest.raises(TypeError):
        RunStore.create(tmp_path / "r", {"x": object()})
    assert not (tmp_path / "r").exists()


def test_open_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        RunStore.open(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserError, match="no run.sqlite"):
        RunStore.open(tmp_path / "plain")
    assert not (tmp_path / "plain" / "run.sqlite").exists()  # opening never creates a database

    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "run.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(UserError, match="cannot be opened|not a readable"):
        RunStore.open(tmp_path / "garbage")

    (tmp_path / "other").mkdir()
    sqlite3.connect(tmp_path / "other" / "run.sqlite").execute("CREATE TABLE x (y)").connection.close()
    with pytest.raises(UserError, match="not a readable run database"):
        RunStore.open(tmp_path / "other")


def test_open_refuses_a_newer_schema(store):
    with store.transaction():
        store._db().execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    store.close()
    with pytest.raises(UserError, match="newer scriptrl"):
        RunStore.open(store.run_dir)


def test_error_messages_are_one_line(tmp_path):
    for call in (lambda: RunStore.open(tmp_path / "nope"), lambda: RunStore.open(tmp_path)):
        with pytest.raises(UserError) as e:
            call()
        assert "\n" not in str(e.value)


# ----------------------------------------------------------------- programs


def test_program_round_trip(store):
    pid = add(
        store, parents=[np.int64(3), 4], island=None, iteration=5, note="n", temperature=np.float32(0.5)
    )
    p = store.program(pid)
    assert p["id"] == pid and p["source"] == SRC and p["parents"] == [3, 4] and p["island"] is None
    assert p["iteration"] == 5 and p["note"] == "n" and p["status"] == "new" and p["error"] is None
    assert p["generator"] == "mutate" and p["change"] == "flip sign" and p["temperature"] == 0.5
    assert p["norm_hash"] == "n1" and len(p["sha256"]) == 64 and p["created"] > 0
    store.set_program_status(pid, "failed", "SyntaxError: line 1")
    assert store.program(pid)["status"] == "failed" and store.program(pid)["error"] == "SyntaxError: line 1"
    store.set_program_status(pid, "evaluated")
    assert store.program(pid)["error"] is None
    pid2 = add(store, norm="n2", status="invalid", error="no policy")
    assert [p["id"] for p in store.programs()] == [pid, pid2]
    assert store.program(pid2)["status"] == "invalid"
    assert store.find_by_norm_hash("n2") == pid2 and store.find_by_norm_hash("zzz") is None
    add(store, norm="n2")
    assert store.find_by_norm_hash("n2") == pid2  # the first one
    with pytest.raises(KeyError):
        store.program(999)
    with pytest.raises(KeyError):
        store.set_program_status(999, "evaluated")


# ----------------------------------------------------------------- evaluations


def test_evaluation_round_trip_from_eval_result(store):
    pid = add(store)
    eid = store.add_evaluation(pid, "dev", "cheap", make_result())
    (e,) = store.evaluations()
    assert e["id"] == eid and e["program_id"] == pid and e["split"] == "dev" and e["stage"] == "cheap"
    assert e["episodes"] == 3 and e["mean"] == 20.0 and e["ci_lo"] == 19.0 and e["ci_hi"] == 21.0
    assert (
        e["median"] == 20.0
        and e["min"] == 10.0
        and e["max"] == 30.0
        and e["std"] == pytest.approx(8.16, abs=0.01)
    )
    assert e["env_steps"] == 60 and e["seconds"] == 0.25 and e["seeds"] == [0, 1, 2]
    assert e["failures"] == [{"seed": 0, "step": 3, "reason": "exception: boom"}]
    assert e["env_id"] == "CartPole-v1" and e["gymnasium_version"] == "1.4.0"
    assert e["isolation"] == {"process": "on", "seccomp": "on (strict)"} and e["program_sha256"] == "abc"
    d0 = e["digest"][0]
    assert d0 == {
        "seed": 0,
        "return": 10.0,
        "length": 10,
        "end": "terminated",
        "reason": None,
        "tail": [{"obs": [0.5, 1.0], "action": 1}],
        "action_summary": {"histogram": [3, 4]},
    }


def test_evaluation_from_dict_and_nan(store):
    pid = add(store)
    d = make_result().to_dict()
    store.add_evaluation(pid, "holdout", "full", d)
    e = store.evaluations(split="holdout")[0]
    assert e["mean"] == 20.0 and e["episodes"] == 3 and e["digest"][2]["return"] == 30.0
    empty = make_result(returns=())
    store.add_evaluation(pid, "dev", "cheap", empty)
    e = store.evaluations(split="dev")[0]
    assert e["episodes"] == 0 and e["mean"] is None and e["min"] is None and e["digest"] == []
    hand = {
        "mean": 5.0,
        "std": 0.0,
        "ci_lo": 4.0,
        "ci_hi": 6.0,
        "median": 5.0,
        "min": 5.0,
        "max": 5.0,
        "env_steps": 9,
        "seconds": 1.0,
        "seeds": [1, 2],
        "failures": [],
        "env_id": "X",
        "isolation": {},
    }
    store.add_evaluation(pid, "tune", "tune", hand)
    e = store.evaluations(stage="tune")[0]
    assert e["episodes"] == 2 and e["ci_lo"] == 4.0 and e["env_id"] == "X"


def test_evaluation_of_a_real_run(store):
    from scriptrl.evaluate import EvalConfig, evaluate

    r = evaluate(SRC, "CartPole-v1", [0, 1], EvalConfig(unsafe_in_process=True), split="dev")
    pid = add(store)
    store.add_evaluation(pid, "dev", "cheap", r)
    e = store.best_evaluation(pid, "dev")
    assert e["mean"] == pytest.approx(r.mean) and e["env_steps"] == r.env_steps and len(e["digest"]) == 2
    assert e["digest"][0]["tail"] and "histogram" in e["digest"][0]["action_summary"]


def test_evaluation_filters_and_best(store):
    a, b = add(store), add(store, norm="n2")
    store.add_evaluation(a, "dev", "cheap", make_result((1.0, 2.0)))
    big = store.add_evaluation(a, "dev", "full", make_result((5.0, 5.0, 5.0)))
    store.add_evaluation(a, "dev", "cheap", make_result((9.0, 9.0)))  # later but fewer episodes
    store.add_evaluation(b, "holdout", "holdout", make_result((7.0,)))
    assert (
        len(store.evaluations(program_id=a)) == 3 and len(store.evaluations(program_id=a, stage="cheap")) == 2
    )
    assert len(store.evaluations(split="holdout")) == 1 and store.evaluations(program_id=b, split="dev") == []
    assert store.best_evaluation(a, "dev")["id"] == big
    tie = store.add_evaluation(a, "dev", "full", make_result((4.0, 4.0, 4.0)))
    assert store.best_evaluation(a, "dev")["id"] == tie  # latest among the most episodes
    assert store.best_evaluation(b, "dev") is None


def test_foreign_key_on_program(store):
    with pytest.raises(sqlite3.IntegrityError):
        store.add_evaluation(42, "dev", "cheap", make_result())
    assert store.evaluations() == []


def test_top_programs_ranks_by_best_evaluation(store):
    ids = [add(store, norm=f"n{i}", generator=f"g{i}") for i in range(4)]
    store.add_evaluation(ids[0], "dev", "full", make_result((10.0, 10.0, 10.0)))
    store.add_evaluation(ids[0], "dev", "cheap", make_result((99.0,)))  # fewer episodes: not its best
    store.add_evaluation(ids[1], "dev", "full", make_result((50.0, 50.0)))
    store.add_evaluation(ids[2], "dev", "full", make_result((30.0, 30.0)))
    store.add_evaluation(ids[3], "holdout", "holdout", make_result((80.0,)))
    top = store.top_programs("dev")
    assert [t["id"] for t in top] == [ids[1], ids[2], ids[0]]
    assert top[0]["mean"] == 50.0 and top[0]["episodes"] == 2 and top[0]["generator"] == "g1"
    assert top[0]["ci_lo"] == 49.0 and top[0]["env_steps"] == 100 and top[0]["parents"] == []
    assert top[2]["mean"] == 10.0 and top[2]["episodes"] == 3
    assert [t["id"] for t in store.top_programs("dev", n=1)] == [ids[1]]
    assert [t["id"] for t in store.top_programs("holdout")] == [ids[3]]


def test_on_the_training_stream_a_program_scores_its_mean_over_every_batch(store):
    a, b = add(store, norm="a"), add(store, norm="b")
    store.add_evaluation(a, "train", "cheap", make_result((100.0,), seed0=100_000))  # one lucky episode
    store.add_evaluation(a, "train", "cheap", make_result((0.0, 0.0, 0.0), seed0=100_001))
    store.add_evaluation(b, "train", "full", make_result((40.0, 40.0), seed0=100_004))
    top = store.top_programs("train")
    assert [t["id"] for t in top] == [b, a]
    assert top[1]["mean"] == 25.0 and top[1]["episodes"] == 4
    assert store.selection_split() == "train"
    one = store.selection_score(a)  # the same pooled score, asked for one program
    assert one is not None and one["id"] == a and one["mean"] == 25.0 and one["episodes"] == 4
    assert store.env_steps(("cheap",)) == 100 and store.env_steps(("cheap", "full"), ("tune",)) == 180
    store.add_event("tune", {"env_steps": 20})
    assert store.env_steps(("cheap", "full"), ("tune",)) == 200


# ----------------------------------------------------------------- calls, events, state, totals


def test_calls_events_state_totals(store):
    pid = add(store)
    c1 = store.add_call(
        CallRecord(
            "llm",
            1.5,
            prompt_tokens=100,
            completion_tokens=50,
            cost_usd=0.01,
            model="m",
            program_id=pid,
            temperature=0.9,
        )
    )
    store.add_call(CallRecord("llm", 0.5, ok=False, error="timeout"))
    calls = store.calls()
    assert calls[0]["id"] == c1 and calls[0]["ok"] is True and calls[0]["model"] == "m"
    assert calls[0]["program_id"] == pid and calls[0]["temperature"] == 0.9 and calls[0]["latency_s"] == 1.5
    assert calls[1]["ok"] is False and calls[1]["error"] == "timeout" and calls[1]["prompt_tokens"] == 0

    store.add_event("start", {"argv": ("a", "b")})
    store.add_event("promotion", {"program": pid, "score": np.float64(3.5)})
    store.add_event("notice")
    assert [e["kind"] for e in store.events()] == ["start", "promotion", "notice"]
    start = store.events("start")[0]["data"]
    assert start["argv"] == ["a", "b"] and start["pid"] == os.getpid() and start["host"]
    assert store.events("promotion")[0]["data"] == {"program": pid, "score": 3.5}
    assert store.events("notice")[0]["data"] == {}

    assert store.load_state() is None
    store.save_state(
        {"iteration": 3, "islands": [[1, 2], (3,)], "rng": np.array([1, 2]), "best": float("inf")}
    )
    store.save_state({"iteration": 4})
    assert store.load_state() == {"iteration": 4}
    store.save_state({"x": np.float32(1.5), "nan": float("nan")})
    assert store.load_state() == {"x": 1.5, "nan": None}

    store.add_evaluation(pid, "dev", "cheap", make_result())
    store.add_evaluation(pid, "dev", "full", make_result((1.0,)))
    t = store.totals()
    assert t == {
        "programs": 1,
        "evaluations": 2,
        "env_steps": 61,
        "eval_seconds": 0.5,
        "calls": 2,
        "model_calls": 1,
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "cost_usd": 0.01,
    }


def test_totals_of_an_empty_run(store):
    assert store.totals() == {
        "programs": 0,
        "evaluations": 0,
        "env_steps": 0,
        "eval_seconds": 0.0,
        "calls": 0,
        "model_calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": 0.0,
    }


def test_unstorable_values_raise_and_write_nothing(store):
    with pytest.raises(TypeError):
        store.add_event("notice", {"x": object()})
    assert store.events() == []


# ----------------------------------------------------------------- transactions


def test_transaction_rolls_back_on_exception(store):
    keep = add(store)
    with pytest.raises(RuntimeError), store.transaction():
        add(store, norm="gone")
        store.add_event("notice", {"x": 1})
        store.save_state({"i": 1})
        raise RuntimeError("crash mid-step")
    assert [p["id"] for p in store.programs()] == [keep]
    assert store.events() == [] and store.load_state() is None and not store._db().in_transaction
    # the store is still usable and ids stay contiguous after a rolled back insert
    assert add(store) == keep + 1


def test_transaction_commits_once_at_the_end(store, tmp_path):
    other = sqlite3.connect(store.run_dir / "run.sqlite")
    with store.transaction():
        pid = add(store)
        store.add_evaluation(pid, "dev", "cheap", make_result())
        store.save_state({"i": pid})
        # another connection sees nothing before the commit
        assert other.execute("SELECT COUNT(*) FROM programs").fetchone()[0] == 0
    assert other.execute("SELECT COUNT(*) FROM programs").fetchone()[0] == 1
    assert other.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 1
    other.close()


def test_nested_transactions_join_the_outer_one(store):
    other = sqlite3.connect(store.run_dir / "run.sqlite")
    with store.transaction():
        a = add(store)
        with store.transaction():
            b = add(store, norm="n2")
            with store.transaction():
                store.add_event("notice")
        assert other.execute("SELECT COUNT(*) FROM programs").fetchone()[0] == 0  # inner exit did not commit
        # an inner failure that the outer step handles undoes only the inner records
        with pytest.raises(ValueError), store.transaction():
            add(store, norm="inner-gone")
            raise ValueError
        c = add(store, norm="n3")
    assert [p["id"] for p in store.programs()] == [a, b, c] and len(store.events()) == 1
    assert other.execute("SELECT COUNT(*) FROM programs").fetchone()[0] == 3
    other.close()

    # an exception escaping the inner level rolls back the whole outer step
    with pytest.raises(KeyError), store.transaction():
        add(store, norm="outer")
        with store.transaction():
            add(store, norm="inner")
            raise KeyError("x")
    assert len(store.programs()) == 3 and store._depth == 0


def test_threads_sharing_a_store_do_not_mix_their_steps(store):
    import threading

    errors: list[BaseException] = []

    def worker(tag: str) -> None:
        try:
            for i in range(30):
                with store.transaction():
                    pid = add(store, norm=f"{tag}{i}")
                    store.add_event("notice", {"tag": tag, "program": pid})
                    if i % 7 == 3:
                        raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in "abcd"]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    programs = {p["id"]: p["norm_hash"] for p in store.programs()}
    assert len(programs) == 4 * 3  # each thread committed steps 0..2, then rolled back step 3 and stopped
    for e in store.events():
        assert programs[e["data"]["program"]].startswith(e["data"]["tag"])


def test_closed_store_refuses_use(store):
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.programs()


# ----------------------------------------------------------------- best_policy.py


def test_best_policy_written_atomically_with_header(store):
    header = {
        "env": "CartPole-v1",
        "holdout score": 500.0,
        "program id": 12,
        "change": "line one\nimport os; os.system('x')\r\nthird",
        "ci": (499.0, 500.0),
    }
    path = store.write_best_policy(SRC, header)
    assert path == store.run_dir / "best_policy.py"
    text = path.read_text()
    lines = text.splitlines()
    assert lines[:5] == [
        "# env: CartPole-v1",
        "# holdout score: 500.0",
        "# program id: 12",
        "# change: line one import os; os.system('x') third",
        "# ci: [499.0,500.0]",
    ]
    assert lines[5] == "" and text.endswith(SRC)
    assert all(line.startswith("#") for line in lines[:5])
    ns: dict = {}
    exec(compile(text, str(path), "exec"), ns)  # the header is only comments; the file is the program
    assert ns["policy"]([0, 0, 0.1, 0]) == 1
    # replacing it leaves one file and no temporaries
    store.write_best_policy("def policy(obs):\n    return 0", {"program id": 13})
    assert path.read_text() == "# program id: 13\n\ndef policy(obs):\n    return 0\n"
    assert sorted(p.name for p in store.run_dir.iterdir() if not p.name.startswith("run.sqlite")) == [
        "best_policy.py"
    ]


def test_best_policy_failure_keeps_the_old_file_and_no_temp(store, monkeypatch):
    path = store.write_best_policy(SRC, {"program id": 1})
    before = path.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.write_best_policy("def policy(obs):\n    return 0\n", {"program id": 2})
    assert path.read_text() == before
    assert [p.name for p in store.run_dir.iterdir() if p.name.endswith(".tmp")] == []
    assert path.stat().st_mode & 0o777 == 0o644


def test_export_and_report_writes_fail_whole_and_leave_no_temp(tmp_path, monkeypatch):
    """Exports and reports go through the store's one atomic write: a failed write keeps the old file."""
    from scriptrl.store import write_atomic

    out = tmp_path / "report.html"
    write_atomic(out, "<p>old</p>\n")
    assert out.read_text() == "<p>old</p>\n" and out.stat().st_mode & 0o777 == 0o644

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(out, "<p>new</p>\n")
    assert out.read_text() == "<p>old</p>\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


# ----------------------------------------------------------------- kill -9

CHILD = r"""
import sys
from pathlib import Path
from scriptrl.store import CallRecord, RunStore
run = Path(sys.argv[1])
store = RunStore.open(run) if (run / "run.sqlite").exists() else RunStore.create(run, {"env": "CartPole-v1"})
state = store.load_state() or {"next_iteration": 0, "last": None}
store.add_event("resume" if state["last"] else "start")
i = state["next_iteration"]
while True:
    with store.transaction():
        parents = [state["last"]] if state["last"] else []
        pid = store.add_program("def policy(obs):\n    return %d\n" % i, "h%d" % i, parents,
                                "mutate", "step", 0.5, i % 3, i, note="x" * 2000)
        store.add_evaluation(pid, "dev", "cheap", {"mean": float(i), "std": 0.0, "seeds": [0],
                                                   "env_steps": 10, "seconds": 0.01, "failures": [],
                                                   "isolation": {}})
        store.add_call(CallRecord("mutate", 0.01, prompt_tokens=10))
        state = {"next_iteration": i + 1, "last": pid}
        store.save_state(state)
    print(pid, flush=True)
    i += 1
"""


def _run_and_kill(run: Path, lines_before_kill: int, extra_delay: float) -> list[int]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(run)], stdout=subprocess.PIPE, text=True)
    printed: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(printed) < lines_before_kill and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            printed.append(int(line))
        time.sleep(extra_delay)  # let it be anywhere: mid-transaction, mid-commit, mid-print
        os.kill(proc.pid, signal.SIGKILL)
        # Read through the same text wrapper readline() used: communicate(timeout=...) reads the
        # raw descriptor and would drop lines that wrapper has already buffered.
        rest = proc.stdout.read()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    printed += [int(x) for x in rest.split()]
    assert proc.returncode == -signal.SIGKILL
    assert len(printed) >= lines_before_kill, "the child did not get going"
    return printed


@pytest.mark.slow
def test_kill_minus_9_loses_nothing_committed_and_duplicates_nothing(tmp_path):
    run = tmp_path / "run"
    printed: list[int] = []
    rounds = [(20, 0.0), (15, 0.013), (25, 0.05), (1, 0.0), (10, 0.002), (40, 0.1), (5, 0.0007), (30, 0.021)]
    for round_, (n, delay) in enumerate(rounds):
        printed += _run_and_kill(run, n, delay)
        with RunStore.open(run) as store:
            assert store.integrity_check() == "ok"
            ids = [p["id"] for p in store.programs()]
            assert len(ids) == len(set(ids))
            assert ids == list(range(1, len(ids) + 1))  # unique and contiguous across crashes and resumes
            assert set(printed) <= set(ids)  # everything reported committed is there
            assert len(ids) - max(printed) <= 1  # at most the one step committed just before the kill
            # the step's records and the resume state committed together
            state = store.load_state()
            assert state["last"] == ids[-1] and state["next_iteration"] == len(ids)
            assert [e["program_id"] for e in store.evaluations()] == ids
            assert len(store.calls()) == len(ids)
            assert [p["iteration"] for p in store.programs()] == list(range(len(ids)))
            assert len(store.events("start")) == 1 and len(store.events("resume")) == round_
            assert store.programs()[-1]["parents"] == ([ids[-2]] if len(ids) > 1 else [])
    assert len(printed) == len(set(printed))


# ----------------------------------------------------------------- listing and views


def populate(run: Path, env: str = "CartPole-v1", best: float = 475.5) -> RunStore:
    s = RunStore.create(run, {"env": env, "generator": "llm-mutate", "seed": 11})
    s.add_event("start")
    a = s.add_program(SRC, "h1", [], "llm-mutate", "add pole-angle rule", 0.8, 0, 1)
    b = s.add_program("def policy(obs):\n    return 0\n", "h2", [a], "crossover", "always left", 0.3, 1, 2)
    s.add_evaluation(a, "dev", "full", make_result((best - 1, best + 1)))
    s.add_evaluation(b, "dev", "full", make_result((9.0, 11.0)))
    s.add_evaluation(a, "holdout", "holdout", make_result((best - 10, best - 10), split="holdout"))
    s.add_call(CallRecord("llm-mutate", 2.0, 1200, 300, 0.0123, model="some-model"))
    return s


def test_list_runs_finds_runs_one_level_down(tmp_path):
    s1 = populate(tmp_path / "a")
    s1.add_event("stop", {"status": "finished"})
    s1.close()
    s2 = populate(tmp_path / "group" / "b", env="Acrobot-v1", best=-80.0)  # left open: "running"
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.sqlite").write_bytes(b"garbage" * 200)
    (tmp_path / "too" / "deep" / "c").mkdir(parents=True)
    RunStore.create(tmp_path / "too" / "deep" / "c", CONFIG).close()

    runs = {Path(r["run_dir"]).name: r for r in list_runs(tmp_path)}
    assert set(runs) == {"a", "b", "broken"}
    a, b = runs["a"], runs["b"]
    assert a["env"] == "CartPole-v1" and a["generator"] == "llm-mutate" and a["status"] == "finished"
    assert a["best_dev"] == 475.5 and a["best_holdout"] == 465.5 and a["programs"] == 2
    assert a["env_steps"] == 951 + 20 + 931 and a["cost"] == pytest.approx(0.0123)
    assert a["created"] and b["env"] == "Acrobot-v1" and b["best_dev"] == 10.0 and b["status"] == "running"
    assert runs["broken"]["status"].startswith("unreadable")
    s2.close()
    assert list_runs(tmp_path / "a")[0]["run_dir"] == str(tmp_path / "a")  # the root itself may be a run
    with pytest.raises(UserError):
        list_runs(tmp_path / "nope")


def test_status_of_a_killed_run_is_interrupted(tmp_path):
    s = RunStore.create(tmp_path / "r", CONFIG)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    s.add_event("start", {"pid": dead.pid})
    s.close()
    assert list_runs(tmp_path)[0]["status"] == "interrupted"


def _console() -> Console:
    return Console(record=True, width=200, force_terminal=False, color_system=None)


def test_print_runs_and_show(tmp_path, capsys):
    s = populate(tmp_path / "a")
    s.close()
    con = _console()
    print_runs(tmp_path, console=con)
    out = con.export_text()
    assert (
        "CartPole-v1" in out
        and "llm-mutate" in out
        and "475.50" in out
        and "465.50" in out
        and "running" in out
    )

    con = _console()
    print_show(tmp_path / "a", console=con)
    out = con.export_text()
    for needle in (
        "CartPole-v1",
        "llm-mutate",
        "11",
        "1,200 prompt",
        "300 completion",
        "$0.0123",
        "add pole-angle rule",
        "475.50 ± 1.00",
        "465.50 ± 1.00",
        "always left",
        "10.00 ± 1.00",
        "obs[2] > 0",
        "no best_policy.py",
    ):
        assert needle in out, needle
    assert out.index("475.50") < out.index("10.00 ± 1.00")  # ranked

    with RunStore.open(tmp_path / "a") as s:
        s.write_best_policy(SRC, {"env": "CartPole-v1", "holdout": 465.5, "program id": 1})
    con = _console()
    print_show(tmp_path / "a", n=1, console=con)
    out = con.export_text()
    assert "# holdout: 465.5" in out and "best_policy.py" in out and "always left" not in out

    capsys.readouterr()
    print_runs(tmp_path, json_output=True)
    runs = json.loads(capsys.readouterr().out)
    assert runs[0]["best_dev"] == 475.5 and runs[0]["programs"] == 2
    print_show(tmp_path / "a", json_output=True)
    data = json.loads(capsys.readouterr().out)
    assert data["env"] == "CartPole-v1" and data["seed"] == 11 and data["totals"]["calls"] == 1
    assert data["top"][0]["holdout_mean"] == 465.5 and data["best_policy"]["source"].startswith("# env:")


def test_show_of_an_empty_run_and_of_no_run(tmp_path):
    RunStore.create(tmp_path / "r", CONFIG).close()
    con = _console()
    print_show(tmp_path / "r", console=con)
    assert "no program has a dev evaluation yet" in con.export_text()
    with pytest.raises(UserError):
        print_show(tmp_path / "missing")
    with pytest.raises(UserError):
        print_show(tmp_path)
    con = _console()
    print_runs(tmp_path / "r" / "..", console=con)
    assert "CartPole-v1" in con.export_text()
