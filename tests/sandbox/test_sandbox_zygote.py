"""The fork-server sandbox: each program runs in a fresh fork of a zygote that never ran program code.

Attacks from ``tests/hostile_extra`` (x28-x32, and x14 which signals its parent: now the
zygote) run through ``evaluate`` with both in-process filters off; then a probe program
reports what it sees of the modules, numpy's and Python's RNGs and the builtins. Every probe
must see them pristine and the zygote must still be the same, living process. The probe is
shown to see the attacks when they run in its own process, so a clean report means something.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from scriptrl.evaluate import EvalConfig, evaluate
from scriptrl.sandbox import lockdown
from scriptrl.sandbox.client import scrubbed_environment
from scriptrl.sandbox.doctor import probe_isolation
from scriptrl.sandbox.forkserver import zygote_pid

from checkout import HOSTILE_EXTRA as EXTRA

pytestmark = pytest.mark.slow

OS_ONLY = EvalConfig(call_timeout=1.0, episode_timeout=10.0, static_checks=False, import_guard=False)
HONEST = "def policy(obs):\n    return 0\n"
PROBE = """
import statistics
_sys = statistics.sys
import json, linecache, math, random
import numpy as np
builtins = _sys.modules["builtins"]
_checks = {
    "m": math.pi == 3.141592653589793 and "scriptrl_pwned" not in dir(math),
    "n": np.pi == 3.141592653589793 and "scriptrl_pwned" not in dir(np),
    "s": statistics.mean([1, 2, 3]) == 2 and json.dumps({"a": 1}) == '{"a": 1}',
    "l": "scriptrl_pwned.py" not in linecache.cache and "scriptrl_pwned" not in _sys.modules,
    "b": "scriptrl_pwned" not in dir(builtins) and builtins.abs(-2) == 2 and builtins.min(1, 2) == 1
         and builtins.max(1, 2) == 2 and builtins.len([1]) == 1
         and builtins.__import__.__name__ == "__import__",
    "r": all(type(f).__name__ != "function" for f in (np.random.seed, np.random.random, random.seed)),
}
_report = "PROBE " + ("".join(k for k, ok in _checks.items() if not ok) or "clean")
_report += " " + repr(np.random.random()) + " " + repr(random.random())


def policy(obs):
    raise RuntimeError(_report)
"""
STATE_ATTACKS = ["x28_module_state", "x29_numpy_rng", "x30_builtins_patch"]
ZYGOTE_ATTACKS = ["x31_find_zygote", "x32_ptrace_zygote", "x14_signal_parent"]


def _source(name: str) -> str:
    return (EXTRA / f"{name}.py").read_text(encoding="utf-8")


def _probe(seed: int) -> tuple[str, str, str]:
    r = evaluate(PROBE, "CartPole-v1", [seed, seed + 1], OS_ONLY)
    assert r.isolation["process"] == lockdown.FORKED
    m = re.search(r"PROBE (\S+) (\S+) (\S+)", r.failures[0]["reason"])
    assert m, r.failures
    return m.group(1), m.group(2), m.group(3)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _live_children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(proc.name))
    return found


def _pristine(seed: int) -> tuple[str, str, str]:
    return "clean", repr(np.random.RandomState(seed).random_sample()), repr(random.Random(seed).random())


@pytest.mark.parametrize("attack", STATE_ATTACKS + ZYGOTE_ATTACKS)
def test_no_state_of_an_attack_reaches_the_next_program_and_the_zygote_survives(attack: str) -> None:
    assert _probe(3) == _pristine(3)
    zygote = zygote_pid()
    assert zygote is not None
    attacked = evaluate(_source(attack), "CartPole-v1", [0, 1, 2], OS_ONLY)
    assert attacked.isolation["process"] == lockdown.FORKED
    assert attacked.mean <= evaluate(HONEST, "CartPole-v1", [0, 1, 2], OS_ONLY).mean
    assert _probe(7) == _pristine(7)
    assert zygote_pid() == zygote and _alive(zygote)
    assert _live_children(zygote) == []  # every worker of the attack was killed


@pytest.mark.parametrize("attack", STATE_ATTACKS)
def test_the_probe_sees_an_attack_run_in_its_own_process(attack: str) -> None:
    source = _source(attack).replace("def policy(obs):", "def _attack_policy(obs):") + PROBE
    r = evaluate(source, "CartPole-v1", [5], OS_ONLY)
    m = re.search(r"PROBE (\S+) (\S+) (\S+)", r.failures[0]["reason"])
    assert m and m.groups() != _pristine(5)


def test_x14_and_x31_die_on_their_kill_and_x32_on_ptrace() -> None:
    for attack in ("x14_signal_parent", "x31_find_zygote", "x32_ptrace_zygote"):
        r = evaluate(_source(attack), "CartPole-v1", [0], OS_ONLY)
        assert "forbidden operation" in r.failures[0]["reason"], (attack, r.failures)


def test_a_forked_worker_locks_down_with_the_same_layers_in_the_same_order_as_a_spawned_one() -> None:
    forked = evaluate(HONEST, "CartPole-v1", [0], EvalConfig())
    spawned = evaluate(HONEST, "CartPole-v1", [0], EvalConfig(fork_server=False))
    assert forked.isolation["process"] == lockdown.FORKED and spawned.isolation["process"] == lockdown.SPAWNED
    assert list(forked.isolation) == list(spawned.isolation)
    assert {k: v for k, v in forked.isolation.items() if k != "process"} == {
        k: v for k, v in spawned.isolation.items() if k != "process"
    }
    assert forked.returns == spawned.returns and not forked.failures


def test_a_hung_worker_is_killed_by_pid_and_replaced_by_a_new_fork() -> None:
    source = "def policy(obs):\n    while obs[2] > 0.05:\n        pass\n    return 1 if obs[2] > 0 else 0\n"
    evaluate(HONEST, "CartPole-v1", [0], OS_ONLY)
    zygote = zygote_pid()
    r = evaluate(source, "CartPole-v1", list(range(6)), OS_ONLY)
    reasons = [f["reason"] for f in r.failures]
    assert reasons and all("timeout" in x or "replaced" in x or "not run" in x for x in reasons)
    assert zygote_pid() == zygote and _live_children(zygote) == []
    assert r.isolation["process"] == lockdown.FORKED


def test_when_the_zygote_dies_workers_are_spawned_and_a_new_zygote_starts() -> None:
    evaluate(HONEST, "CartPole-v1", [0], EvalConfig())
    old = zygote_pid()
    assert old is not None
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while zygote_pid() == old and time.monotonic() < deadline:
        time.sleep(0.01)
    during = evaluate(HONEST, "CartPole-v1", [0, 1], EvalConfig())
    assert not during.failures and during.isolation["process"] == lockdown.SPAWNED
    after = evaluate(HONEST, "CartPole-v1", [0, 1], EvalConfig())
    assert not after.failures and after.isolation["process"] == lockdown.FORKED
    assert zygote_pid() not in (None, old) and during.returns == after.returns


def test_the_zygote_is_single_threaded_and_runs_in_the_scrubbed_environment() -> None:
    evaluate(HONEST, "CartPole-v1", [0], EvalConfig())
    zygote = zygote_pid()
    assert len(os.listdir(f"/proc/{zygote}/task")) == 1
    environ = Path(f"/proc/{zygote}/environ").read_bytes().split(b"\0")
    names = {e.split(b"=", 1)[0].decode() for e in environ if e}
    assert names == set(scrubbed_environment())
    assert b"OPENBLAS_NUM_THREADS=1" in environ


def test_doctor_names_the_start_method() -> None:
    assert probe_isolation(fork_server=True).start_method == "fork-server"
    spawned = probe_isolation(fork_server=False)
    assert spawned.start_method == "spawn" and spawned.isolation["process"] == lockdown.SPAWNED


def test_releasing_a_forked_worker_twice_leaves_other_files_alone(tmp_path):
    """A kill after a failed kill releases again: the pidfd number may by then belong to another
    file, which a second close would break."""
    import os

    from scriptrl.sandbox.forkserver import ForkedWorker

    worker = ForkedWorker()
    worker.spawn()
    proc = worker.proc
    assert proc is not None
    proc.kill()
    proc.release()
    reused = os.open(tmp_path / "other", os.O_CREAT | os.O_WRONLY)
    try:
        proc.release()
        worker.kill()
        assert os.write(reused, b"still open") == 10
    finally:
        os.close(reused)
