"""Evaluation throughput of the local process pool and of Ray, with 1 and 2 workers.

Usage: python benchmarks/executor_throughput.py [--programs N] [--episodes E] [--rounds R]
       [--ray-address HOST:PORT] [--out FILE.json] [--results-md benchmarks/RESULTS.md]

The workload is what the search sends: a batch of distinct programs, each evaluated on
the same seeds in its own sandbox worker. Throughput is environment steps per wall second
of ``executor.map`` after a warm-up call (pool processes or actors started, warm sandbox
spares ready), so it compares the executors' steady state, not their start-up. The 1 -> 2
worker speed-up is taken within each round (the two runs are a few seconds apart) and its
median reported, because other work on a shared machine drifts over minutes.

It also measures what one Ray call costs by itself (the overhead that batching amortises)
and the CPU one worker keeps busy, which bounds the speed-up a 2-core machine can show.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import statistics
import subprocess
import time
from pathlib import Path

import gymnasium as gym

import scriptrl.evaluate.executors_ray as xr
from scriptrl.envs import resolve_env
from scriptrl.evaluate.executors import EvalJob, LocalExecutor, run_job
from scriptrl.evaluate.executors_ray import RayExecutor, result_to_wire

# Competent policies, so episodes run as long as in a real search (a trivial LunarLander
# policy crashes in ~80 steps and the benchmark would time sandbox start-ups instead).
CARTPOLE = "def policy(obs):\n    return 1 if obs[2] + {k:.3f} * obs[3] + 0.01 * obs[1] > 0 else 0\n"
LUNAR = """def policy(s):
    angle_targ = max(-0.4, min(0.4, s[0] * 0.5 + s[2] * 1.0))
    hover_targ = {k:.3f} * abs(s[0])
    angle_todo = (angle_targ - s[4]) * 0.5 - s[5] * 1.0
    hover_todo = (hover_targ - s[1]) * 0.5 - s[3] * 0.5
    if s[6] or s[7]:
        angle_todo = 0
        hover_todo = -s[3] * 0.5
    if hover_todo > abs(angle_todo) and hover_todo > 0.05:
        return 2
    if angle_todo < -0.05:
        return 3
    if angle_todo > 0.05:
        return 1
    return 0
"""
ENVS = {"CartPole-v1": (CARTPOLE, 0.45, 0.01), "LunarLander-v3": (LUNAR, 0.50, 0.005)}
SECTION = "## Executors: local pool vs Ray"
BEGIN, END = "<!-- executors:begin -->", "<!-- executors:end -->"


def make_jobs(env_id: str, programs: int, episodes: int) -> list[EvalJob]:
    template, k0, dk = ENVS[env_id]
    env = resolve_env(env_id)
    seeds = tuple(range(episodes))
    return [EvalJob(template.format(k=k0 + i * dk), env, seeds, "dev", f"p{i}.py") for i in range(programs)]


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def timed_map(executor, jobs: list[EvalJob]) -> tuple[float, int, list]:
    t0 = time.perf_counter()
    results = executor.map(jobs)
    dt = time.perf_counter() - t0
    assert all(not r.failures for r in results), [r.failures[:1] for r in results if r.failures][:1]
    return dt, sum(r.env_steps for r in results), [r.returns for r in results]


def build(kind: str, workers: int):
    return LocalExecutor(workers) if kind == "local" else RayExecutor(workers)


def measure_overhead(samples: int = 200, jobs: int = 64) -> dict:
    """One Ray call, empty and with one evaluation that does no work (a program the static
    check rejects: no sandbox, no environment steps), against the same job in this process."""
    env = resolve_env("CartPole-v1")
    trivial = [
        EvalJob(f"import os  # {i}\ndef policy(obs):\n    return 0\n", env, (0,), "dev") for i in range(jobs)
    ]
    cfg = LocalExecutor(1).config
    t0 = time.perf_counter()
    for j in trivial:
        run_job(j, cfg)
    direct = (time.perf_counter() - t0) / jobs
    ex = RayExecutor(1)
    try:
        actor = ex._actors[0]
        import ray

        ray.get(actor.ping.remote())
        pings = []
        for _ in range(samples):
            t = time.perf_counter()
            ray.get(actor.ping.remote())
            pings.append(time.perf_counter() - t)
        per_job: dict[str, float] = {}
        for label, cap in (("unbatched", 1), ("batched", xr.MAX_BATCH)):
            old, xr.MAX_BATCH = xr.MAX_BATCH, cap
            try:
                ex.map(trivial[:4])
                t0 = time.perf_counter()
                ex.map(trivial)
                per_job[label] = (time.perf_counter() - t0) / jobs
            finally:
                xr.MAX_BATCH = old
        big = ex.map(make_jobs("LunarLander-v3", 1, 20))[0]
    finally:
        ex.close()
    wire = pickle.dumps(result_to_wire(big))
    return {
        "empty_call_ms": 1000 * statistics.median(pings),
        "empty_call_p90_ms": 1000 * sorted(pings)[int(0.9 * len(pings))],
        "trivial_job_in_process_ms": 1000 * direct,
        "trivial_job_ray_unbatched_ms": 1000 * per_job["unbatched"],
        "trivial_job_ray_batched_ms": 1000 * per_job["batched"],
        "overhead_per_call_ms": 1000 * (per_job["unbatched"] - direct),
        "overhead_per_job_batched_ms": 1000 * (per_job["batched"] - direct),
        "result_wire_bytes_20_episodes": len(wire),
    }


def cpu_split(jobs: list[EvalJob]) -> dict:
    """Where one worker's CPU goes: the evaluator (this process, stepping the environment and
    checking actions), the sandbox workers (reaped children: the policy and their start-up),
    and the start-up alone, from fresh workers started on their own. CPU seconds hardly
    depend on other load; the wall time does, so ``cores`` is only as good as the load allows.
    A 2-core machine cannot speed 1 -> 2 workers up by more than 2 / ``cores``."""
    from scriptrl.evaluate import release_spare_workers
    from scriptrl.sandbox.client import SandboxWorker

    ex = LocalExecutor(1)
    ex.map(jobs[:1])
    time.sleep(0.5)  # the warm spare finishes starting before the clock runs
    s0, c0, t0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    results = ex.map(jobs)
    wall = time.perf_counter() - t0
    time.sleep(0.5)  # the last spare finishes its start-up; it is counted when killed and reaped
    release_spare_workers()
    evaluator, sandbox = _cpu(resource.RUSAGE_SELF) - s0, _cpu(resource.RUSAGE_CHILDREN) - c0
    c1 = _cpu(resource.RUSAGE_CHILDREN)
    for _ in range(8):
        w = SandboxWorker()
        w.start()
        w.kill()
    startup = (_cpu(resource.RUSAGE_CHILDREN) - c1) / 8
    steps = sum(r.env_steps for r in results)
    return {
        "programs": len(jobs),
        "steps": steps,
        "wall_s": wall,
        "evaluator_cpu_s": evaluator,
        "sandbox_cpu_s": sandbox,
        "startup_cpu_s_per_program": startup,
        "startup_cpu_s": startup * len(jobs),
        "policy_cpu_s": max(0.0, sandbox - startup * len(jobs)),
        "cores": (evaluator + sandbox) / wall,
    }


def _workload(text: str) -> tuple[int, int]:
    programs, _, episodes = text.partition("x")
    return int(programs), int(episodes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--workloads",
        default="16x10,8x50",
        type=lambda t: [_workload(w) for w in t.split(",")],
        help="PROGRAMSxEPISODES per map() call, comma-separated (default: a search batch "
        "and a holdout-sized evaluation)",
    )
    ap.add_argument("--rounds", type=int, default=3, help="rounds; medians reported")
    ap.add_argument(
        "--ray-address", help="a running Ray cluster (default: a private one with this machine's CPUs)"
    )
    ap.add_argument("--out", default="benchmarks/executor_throughput.json")
    ap.add_argument("--results-md", default="benchmarks/RESULTS.md", help="'' to leave it alone")
    ap.add_argument("--render", metavar="JSON", help="only rewrite the RESULTS.md section from a saved JSON")
    args = ap.parse_args()
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        write_section(Path(args.results_md), markdown(saved["meta"], saved["overhead"], saved["rows"]))
        return

    import ray

    if args.ray_address:
        ray.init(address=args.ray_address, log_to_driver=False, logging_level="WARNING")
    else:
        ray.init(
            num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="WARNING"
        )
    started = time.time()
    load_before = os.getloadavg()
    overhead = measure_overhead()
    cases = [(env_id, w) for w in args.workloads for env_id in ENVS]
    runs: dict[tuple, list[float]] = {}
    speedups: dict[tuple, list[float]] = {}
    loads: list[float] = []
    steps_per_map: dict[tuple, int] = {}
    for rnd in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for env_id, (programs, episodes) in cases:
            case = (env_id, programs, episodes)
            jobs = make_jobs(env_id, programs, episodes)
            reference = None
            for kind in ("local", "ray"):
                rates = {}
                for workers in (1, 2) if rnd % 2 == 0 else (2, 1):
                    ex = build(kind, workers)
                    try:
                        ex.map(jobs[: 2 * workers])  # start processes/actors and their warm spares
                        dt, steps, returns = timed_map(ex, jobs)
                    finally:
                        ex.close()
                    if reference is None:
                        reference = returns
                    assert returns == reference, f"{kind} x{workers} scored differently on {env_id}"
                    steps_per_map[case] = steps
                    rates[workers] = steps / dt
                    runs.setdefault((*case, kind, workers), []).append(steps / dt)
                    print(
                        f"round {rnd + 1} {env_id:<15} {programs}x{episodes:<3} {kind:<5} x{workers}: "
                        f"{steps / dt:>9,.0f} steps/s ({dt:.2f} s)",
                        flush=True,
                    )
                speedups.setdefault((*case, kind), []).append(rates[2] / rates[1])
    split = {(env_id, *w): cpu_split(make_jobs(env_id, *w)) for env_id, w in cases}
    loads.append(os.getloadavg()[0])
    ray.shutdown()

    rows = []
    for env_id, (programs, episodes) in cases:
        case = (env_id, programs, episodes)
        for kind in ("local", "ray"):
            one, two = statistics.median(runs[(*case, kind, 1)]), statistics.median(runs[(*case, kind, 2)])
            rows.append(
                {
                    "env": env_id,
                    "programs": programs,
                    "episodes": episodes,
                    "executor": kind,
                    "steps_per_map": steps_per_map[case],
                    "steps_per_s_1": one,
                    "steps_per_s_2": two,
                    "speedup_median_of_rounds": statistics.median(speedups[(*case, kind)]),
                    "speedups": speedups[(*case, kind)],
                    "rates_1": runs[(*case, kind, 1)],
                    "rates_2": runs[(*case, kind, 2)],
                    "cpu_split_one_worker": split[case],
                }
            )
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "gymnasium": gym.__version__,
        "ray": ray.__version__,
        "ray_address": args.ray_address or "private instance on this machine",
        "workloads": [f"{p}x{e}" for p, e in args.workloads],
        "rounds": args.rounds,
        "load_before": [round(x, 2) for x in load_before],
        "load_per_round": [round(x, 2) for x in loads],
        "minutes": round((time.time() - started) / 60, 1),
        "git": _git(),
    }
    print()
    print(
        f"{'env':<16}{'workload':<10}{'executor':<10}{'1 worker':>12}{'2 workers':>12}"
        f"{'speed-up':>10}{'ceiling':>9}"
    )
    for r in rows:
        print(
            f"{r['env']:<16}{r['programs']}x{r['episodes']:<7}{r['executor']:<10}{r['steps_per_s_1']:>12,.0f}"
            f"{r['steps_per_s_2']:>12,.0f}{r['speedup_median_of_rounds']:>9.2f}x"
            f"{ceiling(r['cpu_split_one_worker']):>8.2f}x"
        )
    print("overhead:", json.dumps({k: round(v, 3) for k, v in overhead.items()}))
    Path(args.out).write_text(json.dumps({"meta": meta, "overhead": overhead, "rows": rows}, indent=2))
    print(f"wrote {args.out}")
    if args.results_md:
        write_section(Path(args.results_md), markdown(meta, overhead, rows))
        print(f"updated the section '{SECTION}' of {args.results_md}")


def ceiling(c: dict) -> float:
    """The best 1 -> 2 speed-up two idle cores allow, estimated from CPU seconds (which other
    load hardly changes). Two workers use at most 2 cores, so they need at least (evaluator
    + policy + start-up) / 2 per step; one worker needs at least evaluator + policy per step
    if its two lanes never overlap (the case most favourable to 2 workers) while the next
    program's sandbox starts on the other core (true when an evaluation outlasts a start-up)."""
    e, p, s = c["evaluator_cpu_s"], c["policy_cpu_s"], c["startup_cpu_s"]
    return min(2.0, 2 * (e + p) / (e + p + s))


def _git() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True
        ).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "")
    except OSError:
        return "unknown"


def markdown(meta: dict, overhead: dict, rows: list[dict]) -> str:
    o = overhead
    lines = [
        f"Command: `python benchmarks/executor_throughput.py` ({meta['rounds']} rounds, medians; "
        f"raw figures in `benchmarks/executor_throughput.json`). Measured {meta['date']}, git {meta['git']}.",
        f"Versions: python {meta['python']}, gymnasium {meta['gymnasium']}, ray {meta['ray']} "
        f"({meta['ray_address']}).",
        f"Machine: {meta['cpus']} cores shared with other work; load average before: "
        f"{' / '.join(str(x) for x in meta['load_before'])} (1/5/15 min), at each round: "
        f"{', '.join(str(x) for x in meta['load_per_round'])}. Whole run: {meta['minutes']} min.",
        f"Workloads per `map()` call (programs x episodes): {', '.join(meta['workloads'])}: a search batch "
        "and a holdout-sized evaluation, with competent policies so episodes last as long as in a search; "
        "each program runs in its own sandbox worker. Steps/s = environment steps / wall seconds of the "
        "call, after a warm-up call.",
        "",
        "| env | programs x episodes | executor | env steps per call | 1 worker (steps/s) "
        "| 2 workers (steps/s) | speed-up 1 -> 2 | 2-core estimate | goal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        goal = ""
        if r["env"] == "LunarLander-v3":
            goal = "met (>= 1.8x)" if r["speedup_median_of_rounds"] >= 1.8 else "missed (< 1.8x)"
        lines.append(
            f"| {r['env']} | {r['programs']} x {r['episodes']} | {r['executor']} | {r['steps_per_map']:,} | "
            f"{r['steps_per_s_1']:,.0f} | {r['steps_per_s_2']:,.0f} | {r['speedup_median_of_rounds']:.2f}x "
            f"({', '.join(f'{s:.2f}' for s in r['speedups'])}) | {ceiling(r['cpu_split_one_worker']):.2f}x "
            f"| {goal} |"
        )
    lines += [
        "",
        "Speed-up: the median of the per-round ratios (each round's two runs are seconds apart), "
        "per-round values in brackets.",
        "",
        "Where one worker's CPU goes (local executor, 1 worker, the same call; CPU seconds per 1,000 env "
        "steps, which other load hardly changes), and the best speed-up it allows on 2 cores:",
        "",
        "| env | programs x episodes | evaluator (env steps, checks) | sandbox: policy and protocol "
        "| sandbox: start-up (per program) "
        "| cores busy with 1 worker (wall-clock, so lowered by the load above) "
        "| 2-core estimate of the best 1 -> 2 speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["executor"] != "local":
            continue
        c = r["cpu_split_one_worker"]
        k = 1000 / c["steps"]
        lines.append(
            f"| {r['env']} | {r['programs']} x {r['episodes']} | {c['evaluator_cpu_s'] * k:.3f} | "
            f"{c['policy_cpu_s'] * k:.3f} | {c['startup_cpu_s'] * k:.3f} "
            f"({1000 * c['startup_cpu_s_per_program']:.0f} ms) | {c['cores']:.2f} | {ceiling(c):.2f}x |"
        )
    lines += [
        "",
        "One worker is more than one process: its sandbox worker computes one lane's actions while the "
        "evaluator steps the other lane, and the next program's sandbox interpreter starts (the warm spare) "
        "during the current evaluation, on the other core. Two workers on two cores have no spare core: "
        "they need all of that CPU, so they are at most about 2 x (evaluator + policy) / "
        "(evaluator + policy + start-up) times faster than one worker (the estimate column: one worker's "
        "lanes assumed never to overlap, the case most favourable to two), whichever the executor. "
        "The sandbox interpreter's start-up (a fresh "
        "`python -I` and its imports for every program) weighs most in short evaluations; with about 1.5 "
        "cores per worker (or one node per worker) each worker keeps its spare core and the estimate is 2x.",
        "",
        "Overhead of one Ray task (an actor call), measured with 1 actor on this machine:",
        "",
        "| what | ms |",
        "|---|---|",
        f"| **one empty call, round trip** (the latency of a task; median / p90 of 200) | "
        f"**{o['empty_call_ms']:.2f}** / {o['empty_call_p90_ms']:.2f} |",
        f"| a job that does no work (statically rejected program), in the driver's process, no Ray | "
        f"{o['trivial_job_in_process_ms']:.2f} |",
        f"| the same job through Ray, one job per call, 2 calls queued per actor (per job) | "
        f"{o['trivial_job_ray_unbatched_ms']:.2f} |",
        f"| the same job through Ray, batched up to {xr.MAX_BATCH} per call, 2 calls queued (per job) | "
        f"{o['trivial_job_ray_batched_ms']:.2f} |",
        "",
        "With calls queued, the round trip overlaps with work in the actor, so an unbatched task costs "
        f"{max(0.0, o['overhead_per_call_ms']):.2f} ms of throughput over running the job in-process, and "
        "batching removes that too (the batched figure can be below the in-process one: the job runs in the "
        "actor while the driver does its own bookkeeping).",
        "",
        f"A result of 20 LunarLander episodes is {o['result_wire_bytes_20_episodes']:,} bytes on the wire. "
        "Against an evaluation of tens of milliseconds (a 3-episode cheap evaluation) to seconds, a "
        "millisecond per call is small; batching programs per call and keeping two calls queued per actor "
        "hides the rest, so the actors never wait for the driver. Across machines add the network round "
        "trip per call; batching divides it by the batch size.",
    ]
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    """Rewrite only this benchmark's section; other sections belong to other benchmarks."""
    block = f"{BEGIN}\n{body}\n{END}"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{block}\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
