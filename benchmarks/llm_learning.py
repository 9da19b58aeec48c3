"""The ablation of issue 15: what the embedded language model adds to the search, and whether evolution does.

Usage: python benchmarks/llm_learning.py [--envs CartPole-v1,LunarLander-v3,...] [--seeds 0,1,2]
           [--methods offline,llm,auto,first] [--model qwen2.5-coder-1.5b] [--scale 1.0]
           [--workers 1] [--out benchmarks/llm_learning.json] [--results benchmarks/RESULTS.md]

Arms, same wall budget per environment (``BUDGET`` times ``--scale``), same search seeds:

* ``offline``: ``scriptrl train --generator offline`` (no model);
* ``llm``: ``--generator llm`` (the model writes beside the search in its lane, the offline mutator
  writes the rounds' children);
* ``auto``: ``--generator auto`` (model and offline mutator in one portfolio);
* ``first``: the model's first programs only, tuned, no evolution: ``--generator llm
  --no-evolution --llm-round-seconds BUDGET`` (the model writes up to ``initial_programs`` first
  programs for as long as the budget lasts, CMA-ES tunes their constants meanwhile and after, and
  no generator writes a child);
* ``ppo``: the Stable-Baselines3 baseline (``scriptrl baseline --algo ppo``), optional.

Every run is its own ``scriptrl`` process, one at a time, so the LLM runs pay for starting their
model like a user's run does. Per run: the load average before it, model calls, prompt and
completion tokens, wall seconds of the process (model load included) and of the search, search
env steps until the first champion whose holdout score reached the solved threshold, the wall
seconds from the process start to that champion (model load included), and the final holdout
score with its 95 % interval. Figures are read back from the run folders
(``scriptrl.glassbox.compare.run_row``), so they can be checked later.

``custom_tasks:ThermalRoom`` is the custom ``module:Class`` environment of
``benchmarks/custom_tasks.py`` (no solved threshold: compare holdout; its first hand rule scores
-78.6). The table is written between ``<!-- llm-ablation:begin/end -->`` in RESULTS.md (appended
when missing), met or not; nothing else in that file is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
#: env -> wall-second budget per run (scaled by --scale). A run stops early only at a return no
#: episode can beat (CartPole's 500), never at the solved threshold: it uses its budget.
BUDGET = {
    "CartPole-v1": 180,
    "LunarLander-v3": 200,
    "MountainCar-v0": 200,
    "Acrobot-v1": 200,
    "custom_tasks:ThermalRoom": 200,
}
METHODS = ("offline", "llm", "auto", "first", "ppo")
GOAL_SECONDS = 60.0
BEGIN, END = "<!-- llm-ablation:begin -->", "<!-- llm-ablation:end -->"


def command(
    method: str, env: str, seed: int, run_dir: Path, seconds: float, model: str, workers: int
) -> list[str]:
    cli = [sys.executable, "-m", "scriptrl"]
    common = ["--run-dir", str(run_dir), "--max-seconds", f"{seconds:g}", "--seed", str(seed), "--json"]
    if method == "ppo":
        return [*cli, "baseline", env, "--algo", "ppo", *common]
    if method not in METHODS:
        raise SystemExit(f"unknown method {method!r} (use {', '.join(METHODS)})")
    generator = "llm" if method == "first" else method
    cmd = [*cli, "train", env, "--generator", generator, "--workers", str(workers), *common]
    if method == "first":  # the model writes first programs for the whole budget, nothing evolves
        cmd += ["--no-evolution", "--llm-round-seconds", f"{seconds:g}"]
    return cmd + (["--model", model] if generator in ("llm", "auto") else [])


def _subprocess_env() -> dict[str, str]:
    """The custom environments' module (benchmarks/custom_tasks.py) importable by the run and its workers."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    return env


def run_one(
    method: str, env: str, seed: int, runs: Path, seconds: float, model: str, workers: int = 1
) -> dict:
    from scriptrl.glassbox.compare import run_row

    run_dir = runs / f"{env.replace(':', '_')}-{method}-s{seed}"
    cmd = command(method, env, seed, run_dir, seconds, model, workers)
    load = os.getloadavg()[0]
    t0, epoch0 = time.monotonic(), time.time()
    with open(runs / f"{run_dir.name}.log", "w") as log:
        proc = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT, env=_subprocess_env()
        )
    wall = time.monotonic() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    summary = json.loads(lines[-1]) if lines else {}
    row = {
        "env": env,
        "method": method,
        "seed": seed,
        "rc": proc.returncode,
        "load": round(load, 1),
        "budget_s": seconds,
        "process_wall_s": round(wall, 1),
        "cmd": " ".join(cmd[2:]),
        "run_dir": str(run_dir),
    }
    if run_dir.exists() and (run_dir / "run.sqlite").exists():
        r = run_row(run_dir)
        row.update(
            {
                k: r[k]
                for k in (
                    "holdout",
                    "holdout_ci",
                    "threshold",
                    "steps_to_threshold",
                    "seconds_to_threshold",
                    "env_steps",
                    "seconds",
                )
            }
        )
        started = _search_started(run_dir)
        if r["seconds_to_threshold"] is not None and started is not None:
            # from the process start: imports, model load and sandbox start included
            row["wall_to_threshold_s"] = round(started - epoch0 + r["seconds_to_threshold"], 1)
    row.update(
        {
            "calls": _model_calls(run_dir, summary),
            "prompt_tokens": summary.get("prompt_tokens", 0),
            "completion_tokens": summary.get("completion_tokens", 0),
            "stop": summary.get("stop_reason"),
        }
    )
    return row


def _search_started(run_dir: Path) -> float | None:
    """When the run's search started (its ``start`` event), seconds since the epoch."""
    from scriptrl.store import RunStore

    store = RunStore.open(run_dir)
    try:
        starts = store.events("start")
        return float(starts[0]["created"]) if starts else None
    finally:
        store.close()


def _model_calls(run_dir: Path, summary: dict) -> int:
    """Requests to the language model (not offline mutations or tuning rounds), from the store."""
    if (run_dir / "run.sqlite").exists():
        from scriptrl.store import RunStore

        store = RunStore.open(run_dir)
        try:
            return int(store.totals().get("model_calls", 0))
        finally:
            store.close()
    return int(summary.get("model_calls", 0))


def _median(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _f(x, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def _budgets(rows: list[dict], envs: list[str], scale: float) -> str:
    used = {r["env"]: r.get("budget_s") for r in rows}
    return ", ".join(f"{e} {used.get(e) or BUDGET[e] * scale:g} s" for e in envs)


def table(
    rows: list[dict], envs: list[str], methods: list[str], model: str, loadavg: str, scale: float
) -> list[str]:
    out = [
        f"### Language-model ablation ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `python benchmarks/llm_learning.py` (model {model}, embedded llama.cpp "
        "server, 1 thread; searches with `--workers 1`; wall budget per run (`--max-seconds`, "
        "`BUDGET` times `--scale`): "
        + _budgets(rows, envs, scale)
        + "; one run at a time). Arms: `offline`, `llm`, `auto`, and `first` = the model's first "
        "programs only, tuned, no evolution (`--generator llm --no-evolution`).",
        f"Machine: {os.cpu_count()} cores; load average when the benchmark started: {loadavg}; the "
        "load column is the 1-minute load before each run (other work shares this machine).",
        'Env steps: search episodes (races, confirmations, tuning). "To threshold": the first champion '
        "whose holdout mean reached the solved threshold; its wall seconds count from the process "
        "start (model load included). Holdout: the final champion's mean on seeds 1000-1049 "
        "± its 95 % half-interval.",
        "",
        "| env | method | seed | load | holdout | to threshold: env steps | to threshold: wall s | "
        "process wall s | env steps | model calls | prompt tokens | completion tokens | stopped |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        reached = r.get("steps_to_threshold")
        if r.get("threshold") is None:
            to_threshold = "no threshold"
        else:
            to_threshold = _f(reached) if reached is not None else "not reached"
        stopped = (r.get("stop") or "rc " + str(r["rc"])).split(";")[0]
        ci = r.get("holdout_ci")
        holdout = _f(r.get("holdout"), ".2f") + (f" ± {ci:.1f}" if ci is not None else "")
        out.append(
            f"| {r['env']} | {r['method']} | {r['seed']} | {_f(r.get('load'), '.1f')} | {holdout} | "
            f"{to_threshold} | {_f(r.get('wall_to_threshold_s'), '.1f')} | {r['process_wall_s']:.1f} | "
            f"{_f(r.get('env_steps'))} | "
            f"{r['calls']} | {r['prompt_tokens']:,} | {r['completion_tokens']:,} | {stopped} |"
        )
    out += [
        "",
        "Medians over the seeds that ran:",
        "",
        "| env | method | runs | solved | holdout | env steps to threshold | wall s to threshold | "
        "model calls | tokens |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for env in envs:
        for m in methods:
            rs = [r for r in rows if r["env"] == env and r["method"] == m]
            if not rs:
                continue
            solved = (
                f"{sum(r.get('steps_to_threshold') is not None for r in rs)}/{len(rs)}"
                if rs[0].get("threshold") is not None
                else "-"
            )
            out.append(
                f"| {env} | {m} | {len(rs)} | {solved} | "
                f"{_f(_median([r.get('holdout') for r in rs]), '.2f')} | "
                f"{_f(_median([r.get('steps_to_threshold') for r in rs]))} | "
                f"{_f(_median([r.get('wall_to_threshold_s') for r in rs]), '.1f')} | "
                f"{_f(_median([r['calls'] for r in rs]))} | "
                f"{_f(_median([r['prompt_tokens'] + r['completion_tokens'] for r in rs]))} |"
            )
    out += ["", *verdicts(rows, envs), ""]
    return out


def verdicts(rows: list[dict], envs: list[str]) -> list[str]:
    """Issue 15's acceptance points on the runs in the table: medians over seeds, a difference
    counted only beyond the larger 95 % half-interval of the two arms, and per-seed pairs."""
    out = ['Against issue 15\'s acceptance points (on the runs above; "tie": within the 95 % interval):', ""]

    def arm(env: str, m: str) -> list[dict]:
        return [r for r in rows if r["env"] == env and r["method"] == m]

    def med(env: str, m: str) -> float | None:
        return _median([r.get("holdout") for r in arm(env, m)])

    def half(env: str, *ms: str) -> float:
        return max([r.get("holdout_ci") or 0.0 for m in ms for r in arm(env, m)] or [0.0])

    def versus(env: str, a: str, b: str) -> str:
        x, y = med(env, a), med(env, b)
        if x is None or y is None:
            return f"{a} vs {b}: {'no valid program from ' + (a if x is None else b)}"
        word = "beats" if x - y > half(env, a, b) else "loses to" if y - x > half(env, a, b) else "ties"
        pairs = {r["seed"]: r.get("holdout") for r in arm(env, b)}
        better = sum(
            1
            for r in arm(env, a)
            if r["seed"] in pairs
            and (pairs[r["seed"]] is None or (r.get("holdout") or -1e18) > pairs[r["seed"]])
        )
        return f"{a} {word} {b} ({x:.2f} vs {y:.2f}; better on {better}/{len(pairs)} seeds)"

    for env in envs:
        o, llm, auto = (med(env, m) for m in ("offline", "llm", "auto"))
        parts = []
        if auto is not None and o is not None and llm is not None:
            best = max(o, llm)
            ok = auto >= best - half(env, "auto", "offline" if o >= llm else "llm")
            parts.append(
                f"auto {auto:.2f} vs the better of offline/llm {best:.2f}: {'met' if ok else 'not met'}"
            )
        if arm(env, "llm") and arm(env, "offline"):
            parts.append(versus(env, "llm", "offline"))
        if arm(env, "llm") and arm(env, "first"):
            parts.append("evolution: " + versus(env, "llm", "first"))
        if parts:
            out.append(f"- {env}: " + "; ".join(parts) + ".")
    for m in ("llm", "auto", "first"):
        cp = arm("CartPole-v1", m)
        if not cp:
            continue
        fast = [r for r in cp if (r.get("wall_to_threshold_s") or float("inf")) < GOAL_SECONDS]
        out.append(
            f"- CartPole-v1 `{m}` solved on holdout in under {GOAL_SECONDS:g} s wall (model load included): "
            f"{len(fast)}/{len(cp)} seeds ({', '.join(str(r['seed']) for r in fast) or 'none'})."
        )
    return out


def write_results(path: Path, body: list[str]) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    block = "\n".join([BEGIN, *body, END])
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default=",".join(BUDGET))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="offline,llm,auto,first")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every wall-second budget")
    ap.add_argument("--workers", type=int, default=1, help="evaluator workers of each search")
    ap.add_argument(
        "--order",
        choices=["env", "seed"],
        default="env",
        help="env: every seed of an env before the next env; seed: every env at a seed before the next seed",
    )
    ap.add_argument(
        "--runs", type=Path, help="folder for the run folders (default runs/llm-learning-TIMESTAMP)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "llm_learning.json")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    ap.add_argument(
        "--append",
        action="store_true",
        help="add this benchmark's rows to those already in --out (a second batch of seeds or envs)",
    )
    ap.add_argument(
        "--retable",
        action="store_true",
        help="rewrite the table from --out and the run folders it names, running nothing",
    )
    args = ap.parse_args()
    envs, methods = args.envs.split(","), args.methods.split(",")
    sys.path.insert(0, str(HERE))  # custom_tasks, for reading a custom environment's runs back
    os.environ["PYTHONPATH"] = _subprocess_env()["PYTHONPATH"]
    if args.retable:
        saved = json.loads(args.out.read_text())
        rows = saved["rows"]
        for r in rows:
            r["calls"] = _model_calls(Path(r["run_dir"]), {})
        args.out.write_text(json.dumps({**saved, "rows": rows}, indent=1))
        write_results(args.results, table(rows, envs, methods, saved["model"], saved["loadavg"], args.scale))
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = args.runs or ROOT / "runs" / f"llm-learning-{time.strftime('%Y%m%d-%H%M%S')}"
    runs.mkdir(parents=True, exist_ok=True)
    loadavg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    if {"llm", "auto", "first"} & set(methods):  # fetch before timing anything: a download is not learning
        subprocess.run([sys.executable, "-m", "scriptrl", "model", "pull", args.model], check=True, cwd=ROOT)
    rows: list[dict] = []
    if args.append and args.out.exists():
        saved = json.loads(args.out.read_text())
        rows, loadavg = saved["rows"], saved["loadavg"] + f"; then {loadavg}"
    by_env = [(e, s) for e in envs for s in seeds]
    order = by_env if args.order == "env" else [(e, s) for s in seeds for e in envs]
    all_envs = list(dict.fromkeys([r["env"] for r in rows] + envs))
    methods = list(dict.fromkeys(methods + [r["method"] for r in rows]))
    for env, seed in order:
        for m in args.methods.split(","):  # the arms back to back per seed: paired at the same load
            row = run_one(m, env, seed, runs, BUDGET[env] * args.scale, args.model, args.workers)
            rows.append(row)
            print(json.dumps(row), flush=True)
            args.out.write_text(json.dumps({"rows": rows, "loadavg": loadavg, "model": args.model}, indent=1))
            # after every run, so an interrupted benchmark still leaves its figures
            write_results(args.results, table(rows, all_envs, methods, args.model, loadavg, args.scale))
    print("\n".join(table(rows, all_envs, methods, args.model, loadavg, args.scale)))


if __name__ == "__main__":
    main()
