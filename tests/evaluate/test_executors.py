"""The local executor runs several evaluations at once per process; results must not change."""

from __future__ import annotations

import threading
import time

from scriptrl.envs import resolve_env
from scriptrl.evaluate import EvalConfig, executors, release_spare_workers
from scriptrl.evaluate.executors import EvalJob, LocalExecutor, run_jobs

# Different programs, one of which fails every episode: each must keep its own results.
SOURCES = [
    "def policy(obs):\n    return 1 if obs[2] + 0.5 * obs[3] > 0 else 0\n",
    "def policy(obs):\n    return 0\n",
    "def policy(obs):\n    raise RuntimeError('boom')\n",
    "def policy(obs):\n    return 1 if obs[2] > 0 else 0\n",
    "def policy(obs):\n    return 1 if obs[3] > 0 else 0\n",
]


def _jobs() -> list[EvalJob]:
    env = resolve_env("CartPole-v1")
    return [EvalJob(s, env, (7 + k, 8 + k, 9 + k), "train") for k, s in enumerate(SOURCES)]


def _summary(results):
    return [(r.seeds, r.returns, r.lengths, [f["reason"] for f in r.failures]) for r in results]


def test_evaluations_in_flight_together_give_the_results_of_one_at_a_time():
    jobs = _jobs()
    try:
        alone = run_jobs(jobs, EvalConfig(), in_flight=1)
        together = run_jobs(jobs, EvalConfig(), in_flight=3)
    finally:
        release_spare_workers()
    assert _summary(together) == _summary(alone)
    assert alone[0].mean > alone[1].mean and alone[2].failures and not alone[0].failures


def test_run_jobs_really_overlaps_evaluations(monkeypatch):
    """With in_flight=2 two evaluations are running at the same moment (else nothing is hidden)."""
    running, peak, lock = [0], [0], threading.Lock()

    def slow(job, config):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return job.seeds

    monkeypatch.setattr(executors, "run_job", slow)
    jobs = _jobs()
    assert run_jobs(jobs, EvalConfig(), in_flight=2) == [j.seeds for j in jobs]  # in job order
    assert peak[0] == 2
    peak[0] = 0
    run_jobs(jobs, EvalConfig(), in_flight=1)
    assert peak[0] == 1


def test_pool_with_evaluations_in_flight_matches_sequential_results():
    jobs = _jobs()
    pooled = LocalExecutor(2, in_flight=2)
    try:
        got = pooled.map(jobs)
        few = pooled.map(jobs[:2])  # no more jobs than processes: one each
    finally:
        pooled.close()
    try:
        expected = run_jobs(jobs, EvalConfig(), in_flight=1)
    finally:
        release_spare_workers()
    assert _summary(got) == _summary(expected)
    assert _summary(few) == _summary(expected[:2])
