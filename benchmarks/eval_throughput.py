"""Sandboxed scriptrl evaluation against a plain in-process loop over the same episodes.

Usage: python benchmarks/eval_throughput.py [--episodes N] [--rounds R] [--out FILE.json]

The plain loop is what a person writes by hand: ``gym.make`` (without gymnasium's env
checker, as scriptrl builds its environments) and a Python policy called every step, in
this process. The scriptrl figures include everything: building the environments,
validating every action, digests and statistics, and starting the worker. Per start method
(``fork-server``: a fork of the pre-imported zygote, the default; ``spawn``: a fresh
interpreter, with the pre-started spare the search used before the fork server):

- start-up: median milliseconds from asking for a worker to the program loaded in it,
  locked down (``sandbox.client.open_worker``), and the CPU milliseconds that cost all
  processes together (load-independent);
- steady: ten times the episodes in one evaluation, which shows the per-step cost alone;
- ten-fresh: ten different programs of 10 CartPole-v1 episodes each, evaluated one after
  the other as a search evaluates them, against the plain loop over the same 100 episodes.

Ratios are plain-loop wall time over scriptrl wall time (1.0: no overhead). The machine
may be shared: the load average is recorded with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from scriptrl.envs import resolve_env
from scriptrl.evaluate import EvalConfig, evaluate, release_spare_workers
from scriptrl.sandbox.client import open_worker

POLICIES = {
    # Trivial policies: the point is evaluator overhead, not control quality.
    "CartPole-v1": "def policy(obs):\n    return 1 if obs[2] + 0.5 * obs[3] > 0 else 0\n",
    "LunarLander-v3": "def policy(obs):\n    if obs[3] < -0.05:\n        return 2\n"
    "    return 1 if obs[4] < -0.05 else (3 if obs[4] > 0.05 else 0)\n",
}
METHODS = {
    "fork-server": EvalConfig(),
    "spawn": EvalConfig(fork_server=False, warm_spare=True),
}


def fresh_programs(n: int) -> list[str]:
    """``n`` different CartPole programs (different constants), as a search proposes them."""
    return [
        f"def policy(obs):\n    return 1 if obs[2] + {0.3 + 0.05 * k:.2f} * obs[3] > 0 else 0\n"
        for k in range(n)
    ]


def plain_seconds(env_id: str, sources: list[str], seeds: list[int]) -> tuple[float, int]:
    """Wall seconds and steps of the hand-written loop: each source over all ``seeds``."""
    policies = []
    for source in sources:
        namespace: dict = {}
        exec(source, namespace)
        policies.append(namespace["policy"])
    steps = 0
    t0 = time.perf_counter()
    for policy in policies:
        env = gym.make(env_id, disable_env_checker=True)
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            done = False
            while not done:
                obs, _, term, trunc, _ = env.step(policy(obs))
                steps += 1
                done = term or trunc
        env.close()
    return time.perf_counter() - t0, steps


def sandboxed_seconds(
    env_id: str, sources: list[str], seeds: list[int], config: EvalConfig
) -> tuple[float, int]:
    renv = resolve_env(env_id)
    steps = 0
    t0 = time.perf_counter()
    for source in sources:
        result = evaluate(source, renv, seeds, config)
        assert not result.failures, result.failures[:1]
        steps += result.env_steps
    return time.perf_counter() - t0, steps


def _cpu_ms(pid: int | None) -> float:
    """User + system CPU a process has used so far (``/proc``; 0 when it is not there)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return 1000.0 * (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def startup(config: EvalConfig, n: int) -> tuple[float, float]:
    """Median wall milliseconds to get a locked-down worker holding a (new) program, and the
    mean CPU milliseconds it cost all processes (this one, the worker, the zygote's forks):
    the CPU figure does not grow with the machine's load."""
    from scriptrl.sandbox.forkserver import zygote_pid

    codec = {"kind": "box", "dtype": "float32", "shape": [4]}
    times, worker_cpu = [], 0.0
    open_worker(
        POLICIES["CartPole-v1"], "p.py", codec, 0, allowed_imports=["math"], fork_server=config.fork_server
    ).close()
    zygote = zygote_pid() if config.fork_server else None
    zygote_cpu, own_cpu = _cpu_ms(zygote), time.process_time()
    for k, source in enumerate(fresh_programs(n)):
        t0 = time.perf_counter()
        worker = open_worker(
            source, f"p{k}.py", codec, k, allowed_imports=["math", "numpy"], fork_server=config.fork_server
        )
        times.append(time.perf_counter() - t0)
        worker_cpu += _cpu_ms(worker.pid)
        worker.close()
    cpu = worker_cpu + _cpu_ms(zygote) - zygote_cpu + 1000.0 * (time.process_time() - own_cpu)
    return 1000 * statistics.median(times), cpu / n


def measure(env_id: str, source: str, method: str, config: EvalConfig, args: argparse.Namespace) -> dict:
    med = statistics.median
    seeds = list(range(1000, 1000 + args.episodes))
    long_seeds = list(range(1000, 1000 + 10 * args.episodes))
    ten, ten_seeds = fresh_programs(10), list(range(1000, 1010))
    sandboxed_seconds(env_id, [source], seeds[:2], config)  # starts the zygote or the first spare
    cold, steady, fresh = [], [], []
    for _ in range(args.rounds):
        p, p_steps = plain_seconds(env_id, [source], seeds)
        s, s_steps = sandboxed_seconds(env_id, [source], seeds, config)
        assert p_steps == s_steps, (p_steps, s_steps)
        cold.append(p / s)
        p, p_steps = plain_seconds(env_id, [source], long_seeds)
        s, s_steps = sandboxed_seconds(env_id, [source], long_seeds, config)
        assert p_steps == s_steps, (p_steps, s_steps)
        steady.append(p / s)
        if env_id == "CartPole-v1":
            p, p_steps = plain_seconds(env_id, ten, ten_seeds)
            s, s_steps = sandboxed_seconds(env_id, ten, ten_seeds, config)
            assert p_steps == s_steps, (p_steps, s_steps)
            fresh.append(p / s)
    wall, cpu = startup(config, args.startups) if env_id == "CartPole-v1" else (None, None)
    return {
        "env": env_id,
        "method": method,
        "episodes": args.episodes,
        "steady_episodes": len(long_seeds),
        "startup_ms": wall,
        "startup_cpu_ms": cpu,
        "one_eval_ratio": med(cold),
        "steady_ratio": med(steady),
        "ten_fresh_ratio": med(fresh) if fresh else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument(
        "--rounds", type=int, default=3, help="alternating plain/sandboxed rounds; medians reported"
    )
    ap.add_argument("--startups", type=int, default=30, help="workers started for the start-up median")
    ap.add_argument("--methods", default="fork-server,spawn")
    ap.add_argument("--out", default="benchmarks/eval_throughput.json")
    args = ap.parse_args()
    load_before = os.getloadavg()
    rows = []
    for method in args.methods.split(","):
        for env_id, source in POLICIES.items():
            rows.append(measure(env_id, source, method, METHODS[method], args))
        release_spare_workers()

    def fmt(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    print(
        f"{'env':<16}{'method':<13}{'start-up ms':>12}{'(cpu ms)':>9}"
        f"{'one eval':>10}{'steady':>8}{'ten fresh':>11}"
    )
    for r in rows:
        print(
            f"{r['env']:<16}{r['method']:<13}{fmt(r['startup_ms'], '.1f'):>12}"
            f"{fmt(r['startup_cpu_ms'], '.1f'):>9}{r['one_eval_ratio']:>10.2f}"
            f"{r['steady_ratio']:>8.2f}{fmt(r['ten_fresh_ratio'], '.2f'):>11}"
        )
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    print(f"load average before {load_before[0]:.2f}, after {meta['load_average_after'][0]:.2f} (1 min)")
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
