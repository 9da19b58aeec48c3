"""Learning with the embedded language model, beside the offline generator and PPO.

Usage: python benchmarks/llm_learning.py [--envs CartPole-v1,LunarLander-v3] [--seeds 0,1,2]
           [--methods llm,offline,ppo] [--model qwen2.5-coder-1.5b] [--scale 1.0]
           [--out benchmarks/llm_learning.json] [--results benchmarks/RESULTS.md]

Every run is its own ``scriptrl`` process, one at a time, so each has the machine's two cores
and the LLM runs pay for starting their model like a user's run does. Per run: model calls,
prompt and completion tokens, wall seconds of the process (model load included) and of the
search, search env steps until the first champion whose holdout score reached the solved
threshold, and the final holdout score. Figures are read back from the run folders
(``scriptrl.glassbox.compare.run_row``), so they can be checked later.

The goal (issue 4): CartPole-v1 solved on holdout in under 60 s wall on 2 cores, in fewer env
steps than PPO. The table is written between ``<!-- llm-learning:begin/end -->`` in
RESULTS.md, met or not; nothing else in that file is touched.
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
#: env -> wall-second budget per run (scaled by --scale); every run stops at its solved threshold
BUDGET = {"CartPole-v1": 180, "LunarLander-v3": 200}
GOAL_SECONDS = 60.0
BEGIN, END = "<!-- llm-learning:begin -->", "<!-- llm-learning:end -->"


def command(method: str, env: str, seed: int, run_dir: Path, seconds: float, model: str) -> list[str]:
    cli = [sys.executable, "-m", "scriptrl"]
    if method == "ppo":
        return [
            *cli,
            "baseline",
            env,
            "--algo",
            "ppo",
            "--run-dir",
            str(run_dir),
            "--max-seconds",
            f"{seconds:g}",
            "--seed",
            str(seed),
            "--json",
        ]
    cmd = [
        *cli,
        "train",
        env,
        "--generator",
        method,
        "--run-dir",
        str(run_dir),
        "--max-seconds",
        f"{seconds:g}",
        "--seed",
        str(seed),
        "--json",
    ]
    return cmd + (["--model", model] if method == "llm" else [])


def run_one(method: str, env: str, seed: int, runs: Path, seconds: float, model: str) -> dict:
    from scriptrl.glassbox.compare import run_row

    run_dir = runs / f"{env}-{method}-s{seed}"
    cmd = command(method, env, seed, run_dir, seconds, model)
    t0 = time.monotonic()
    with open(runs / f"{run_dir.name}.log", "w") as log:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
    wall = time.monotonic() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    summary = json.loads(lines[-1]) if lines else {}
    row = {
        "env": env,
        "method": method,
        "seed": seed,
        "rc": proc.returncode,
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
                    "threshold",
                    "steps_to_threshold",
                    "seconds_to_threshold",
                    "env_steps",
                    "seconds",
                )
            }
        )
    row.update(
        {
            "calls": _model_calls(run_dir, summary),
            "prompt_tokens": summary.get("prompt_tokens", 0),
            "completion_tokens": summary.get("completion_tokens", 0),
            "stop": summary.get("stop_reason"),
        }
    )
    return row


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


def table(
    rows: list[dict], envs: list[str], methods: list[str], model: str, loadavg: str, scale: float
) -> list[str]:
    out = [
        f"### Language-model learning ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `python benchmarks/llm_learning.py` (model {model}, embedded llama.cpp server, 1 thread; "
        f"searches with 2 evaluator workers; budget per run: "
        + ", ".join(f"{e} {BUDGET[e] * scale:g} s" for e in envs)
        + "; one run at a time).",
        f"Machine: {os.cpu_count()} cores; load average when the benchmark started: {loadavg} "
        "(other work shares this machine: absolute times drift).",
        "Env steps: a search counts its dev and tuning episodes; PPO its training steps. "
        '"To threshold": the first champion whose holdout mean reached the solved threshold. '
        "Seconds to threshold are search seconds (after the model has loaded); "
        "process wall includes loading.",
        "",
        "| env | method | seed | holdout | to threshold: env steps | to threshold: s | process wall s | "
        "env steps | model calls | prompt tokens | completion tokens | stopped |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        reached = r.get("steps_to_threshold")
        to_threshold = _f(reached) if reached is not None else "not reached"
        stopped = r.get("stop") or "rc " + str(r["rc"])
        out.append(
            f"| {r['env']} | {r['method']} | {r['seed']} | {_f(r.get('holdout'), '.2f')} | {to_threshold} | "
            f"{_f(r.get('seconds_to_threshold'), '.1f')} | {r['process_wall_s']:.1f} | "
            f"{_f(r.get('env_steps'))} | "
            f"{r['calls']} | {r['prompt_tokens']:,} | {r['completion_tokens']:,} | {stopped} |"
        )
    out += [
        "",
        "Medians over seeds:",
        "",
        "| env | method | solved | holdout | env steps to threshold | s to threshold | model calls "
        "| tokens |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for env in envs:
        for m in methods:
            rs = [r for r in rows if r["env"] == env and r["method"] == m]
            if not rs:
                continue
            solved = sum(r.get("steps_to_threshold") is not None for r in rs)
            out.append(
                f"| {env} | {m} | {solved}/{len(rs)} | "
                f"{_f(_median([r.get('holdout') for r in rs]), '.2f')} | "
                f"{_f(_median([r.get('steps_to_threshold') for r in rs]))} | "
                f"{_f(_median([r.get('seconds_to_threshold') for r in rs]), '.1f')} | "
                f"{_f(_median([r['calls'] for r in rs]))} | "
                f"{_f(_median([r['prompt_tokens'] + r['completion_tokens'] for r in rs]))} |"
            )
    out += [
        "",
        "Goal: CartPole-v1 solved on holdout in under 60 s wall on 2 cores, in fewer env steps than PPO.",
        "",
    ]
    llm = [r for r in rows if r["env"] == "CartPole-v1" and r["method"] == "llm"]
    ppo = [r for r in rows if r["env"] == "CartPole-v1" and r["method"] == "ppo"]
    if llm:
        fast = [
            r for r in llm if r.get("seconds_to_threshold") is not None and r["process_wall_s"] < GOAL_SECONDS
        ]
        ppo_steps = _median([r.get("steps_to_threshold") for r in ppo]) if ppo else None
        llm_steps = _median([r.get("steps_to_threshold") for r in llm])
        out.append(
            f"- under 60 s (process wall, model load included): {len(fast)}/{len(llm)} seeds: "
            f"{'met' if len(fast) == len(llm) else 'not met'}."
        )
        if ppo:
            verdict = (
                "met" if llm_steps is not None and (ppo_steps is None or llm_steps < ppo_steps) else "not met"
            )
            out.append(
                f"- fewer env steps than PPO: median {_f(llm_steps)}"
                f" vs PPO {_f(ppo_steps) if ppo_steps else 'never'} ({verdict})."
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
    ap.add_argument("--envs", default="CartPole-v1,LunarLander-v3")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="llm,offline,ppo")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every wall-second budget")
    ap.add_argument(
        "--runs", type=Path, help="folder for the run folders (default runs/llm-learning-TIMESTAMP)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "llm_learning.json")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    ap.add_argument(
        "--retable",
        action="store_true",
        help="rewrite the table from --out and the run folders it names, running nothing",
    )
    args = ap.parse_args()
    envs, methods = args.envs.split(","), args.methods.split(",")
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
    if "llm" in methods:  # fetch before timing anything: a first run's download is not learning time
        subprocess.run([sys.executable, "-m", "scriptrl", "model", "pull", args.model], check=True, cwd=ROOT)
    rows: list[dict] = []
    for env in envs:
        for seed in seeds:
            for m in methods:
                row = run_one(m, env, seed, runs, BUDGET[env] * args.scale, args.model)
                rows.append(row)
                print(json.dumps(row), flush=True)
                args.out.write_text(
                    json.dumps({"rows": rows, "loadavg": loadavg, "model": args.model}, indent=1)
                )
                # after every run, so an interrupted benchmark still leaves its figures
                write_results(args.results, table(rows, envs, methods, args.model, loadavg, args.scale))
    print("\n".join(table(rows, envs, methods, args.model, loadavg, args.scale)))


if __name__ == "__main__":
    main()
