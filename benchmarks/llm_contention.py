"""How much busy evaluators slow the embedded model: the figure behind "tune beside the model
with one evaluator, not two".

Usage: python benchmarks/llm_contention.py [--model qwen2.5-coder-1.5b] [--calls 3]
           [--out benchmarks/llm_contention.json]

Starts the embedded llama.cpp server (1 thread), warms its prompt cache with one mutation
prompt, then sends ``--calls`` mutation prompts (each with a different parent, so part of
the prompt is new) while 0, 1 and 2 local evaluator processes run CartPole-v1 evaluations
without pause. Prints llama.cpp's own timings (prompt and generation tokens per second) and
writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICY = "def policy(obs):\n    return 1 if 0.3 * obs[1] + 1.2 * obs[2] + 0.4 * obs[3] > 0.0 else 0\n"


def main() -> None:
    from scriptrl.envs import resolve_env
    from scriptrl.evaluate.executors import EvalJob, LocalExecutor
    from scriptrl.generators.base import GenContext, ParentInfo
    from scriptrl.generators.llm import prompts
    from scriptrl.generators.llm.embedded import EmbeddedServer
    from scriptrl.generators.llm.weights import pull

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "llm_contention.json")
    args = ap.parse_args()

    env = resolve_env("CartPole-v1")
    ctx = GenContext.for_env(env)
    server = EmbeddedServer(pull(args.model), args.model, threads=1, n_ctx=4096)
    url = server.start()

    def call(k: int) -> dict:
        parent = ParentInfo(
            1,
            f"def policy(obs):\n    return 1 if {k / 100} * obs[2] + 0.2 * obs[3] > 0.0 else 0\n",
            100.0 + k,
            None,
        )
        messages, _ = prompts.mutate_prompt(ctx, parent, 0.7, None)
        body = {
            "model": args.model,
            "messages": messages.as_openai(),
            "max_tokens": 120,
            "temperature": 0.7,
            "seed": k,
        }
        req = urllib.request.Request(
            url + "/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        t0 = time.monotonic()
        reply = json.loads(urllib.request.urlopen(req, timeout=900).read())
        t = reply["timings"]
        return {
            "seconds": round(time.monotonic() - t0, 2),
            "prompt_tokens": t["prompt_n"],
            "prompt_per_s": round(t["prompt_per_second"], 1),
            "generated": t["predicted_n"],
            "generated_per_s": round(t["predicted_per_second"], 1),
        }

    loadavg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = []
    try:
        call(0)  # the system prompt and environment description enter the cache
        for workers in (0, 1, 2):
            stop = threading.Event()
            executor = LocalExecutor(workers) if workers else None

            def load(ex=executor, stop=stop, n=4 * workers) -> None:
                while not stop.is_set():
                    ex.map([EvalJob(POLICY, env, (0, 1, 2), "dev")] * n)

            thread = threading.Thread(target=load, daemon=True) if executor else None
            if thread:
                thread.start()
                time.sleep(3)  # the pool is up and busy
            calls = [call(10 * workers + k + 1) for k in range(args.calls)]
            if thread:
                stop.set()
                thread.join()
                executor.close()
            rows.append(
                {
                    "busy_evaluators": workers,
                    "calls": calls,
                    "generated_per_s": statistics.median(c["generated_per_s"] for c in calls),
                    "prompt_per_s": statistics.median(c["prompt_per_s"] for c in calls),
                }
            )
    finally:
        server.close()
    alone = rows[0]["generated_per_s"]
    print(f"model {args.model}, 1 thread; {os.cpu_count()} cores; load average before: {loadavg}")
    print("| busy evaluators | prompt tokens/s | generated tokens/s | slowdown (generation) |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['busy_evaluators']} | {r['prompt_per_s']:.1f} | {r['generated_per_s']:.1f} | "
            f"{alone / r['generated_per_s']:.2f}x |"
        )
    args.out.write_text(json.dumps({"model": args.model, "loadavg": loadavg, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
