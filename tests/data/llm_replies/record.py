"""Record real replies from scriptrl's local models, for the reply-parsing tests.

    .venv/bin/python tests/data/llm_replies/record.py qwen2.5-coder-0.5b [CartPole-v1 ...] [--quick]

    .venv/bin/python tests/data/llm_replies/record.py --expect   # after reviewing the parses

Starts the embedded server, sends the prompts scriptrl really sends (first programs with
each hint, a mutation of a weak and of a decent parent with their real episode feedback, a
crossover, and a repair round for every unusable reply), and writes each exchange as one JSON
file beside this script. The files are data: the tests never call a model, they parse these.
``--expect`` writes ``expected.json``, what the parser makes of every recorded reply today; it
is checked in after a person has read the parses, and test_llm_replies.py holds the parser to it.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from scriptrl.envs import resolve_env
from scriptrl.evaluate import evaluate
from scriptrl.generators.base import GenContext, ParentInfo
from scriptrl.generators.llm import prompts
from scriptrl.generators.llm.backends import OpenAIBackend, Redactor
from scriptrl.generators.llm.embedded import EmbeddedServer
from scriptrl.generators.llm.replies import interpret
from scriptrl.generators.llm.weights import pull
from scriptrl.store import RunStore

HERE = Path(__file__).resolve().parent
PARENTS = {
    "CartPole-v1": [
        'def policy(obs):\n    """Push toward the side the pole leans."""\n'
        "    return 1 if obs[2] > 0 else 0\n",
        'def policy(obs):\n    """Lean plus spin."""\n    ANGLE, SPIN = 1.0, 0.3\n'
        "    return 1 if ANGLE * obs[2] + SPIN * obs[3] > 0 else 0\n",
    ],
    "LunarLander-v3": [
        'def policy(obs):\n    """Fire the main engine when falling fast."""\n'
        "    return 2 if obs[3] < -0.3 else 0\n",
        'def policy(obs):\n    """Hover and correct the tilt."""\n    if obs[3] < -0.2:\n        return 2\n'
        "    if obs[4] > 0.1:\n        return 3\n    if obs[4] < -0.1:\n        return 1\n    return 0\n",
    ],
}


def parent_info(env, source: str, pid: int) -> ParentInfo:
    """A parent exactly as the search hands it over: score and digest from a stored evaluation."""
    res = evaluate(source, env, list(range(5)), split="dev")
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore.create(Path(tmp) / "run", {"env": env.id})
        p = store.add_program(source, str(pid), (), "record", "init", 0.5, None, 0, "")
        store.add_evaluation(p, "dev", "full", res)
        ev = store.best_evaluation(p, "dev")
        store.close()
    digest = {k: ev.get(k) for k in ("episodes", "mean", "std", "min", "max", "failures", "digest")}
    return ParentInfo(id=pid, source=source, score=res.mean, digest=digest)


def main(model: str, envs: list[str], seeds: tuple[int, ...] = (1, 2)) -> None:
    server = EmbeddedServer(pull(model), model, threads=1, n_ctx=4096, seed=0)
    client = OpenAIBackend(model, server.start(), None, 600.0, Redactor())
    n = 0
    try:
        for env_id in envs:
            env = resolve_env(env_id)
            ctx = GenContext.for_env(env)
            ctx.history = [9.4, 9.4, 41.0, 41.0]
            parents = [parent_info(env, s, i + 1) for i, s in enumerate(PARENTS[env_id])]
            jobs = [(f"init{i}", prompts.initial_prompt(ctx, i, None), None) for i in range(4)]
            for i, p in enumerate(parents):
                for temp in (0.3, 1.2):
                    messages, _ = prompts.mutate_prompt(ctx, p, temp, None, "auto")
                    jobs.append((f"mutate{i}-t{temp}", messages, p.source))
            jobs.append(("crossover", prompts.crossover_prompt(ctx, parents[0], parents[1], 0.8, None), None))
            jobs.append(
                ("edits", prompts.mutate_prompt(ctx, parents[1], 0.6, None, "edits")[0], parents[1].source)
            )
            for name, messages, parent in jobs:
                for seed in seeds:
                    reply = client.complete(messages, 0.7, 400, seed)
                    record = {
                        "model": model,
                        "env": env_id,
                        "kind": name,
                        "seed": seed,
                        "temperature": 0.7,
                        "max_tokens": 400,
                        "messages": messages.as_openai(),
                        "parent": parent,
                        "reply": reply.text,
                        "finish_reason": reply.finish_reason,
                        "usage": {
                            "prompt_tokens": reply.prompt_tokens,
                            "completion_tokens": reply.completion_tokens,
                        },
                        "latency_s": round(reply.latency_s, 2),
                        "recorded": time.strftime("%Y-%m-%d"),
                    }
                    parsed = interpret(reply.text, parent)
                    if not parsed.ok and reply.text.strip():
                        follow = messages.followed_by(
                            reply.text,
                            prompts.repair_prompt(parsed.problem or "", reply.finish_reason == "length"),
                        )
                        fixed = client.complete(follow, 0.7, 400, seed + 1)
                        record["repair"] = {
                            "problem": parsed.problem,
                            "reply": fixed.text,
                            "finish_reason": fixed.finish_reason,
                            "usage": {
                                "prompt_tokens": fixed.prompt_tokens,
                                "completion_tokens": fixed.completion_tokens,
                            },
                        }
                    out = HERE / f"{model}-{env_id}-{name}-s{seed}.json"
                    out.write_text(json.dumps(record, indent=1) + "\n")
                    n += 1
                    print(
                        f"{out.name}: {'ok' if parsed.ok else parsed.problem} "
                        f"({reply.completion_tokens} tokens, {reply.latency_s:.1f} s)",
                        flush=True,
                    )
    finally:
        server.close()
    print(f"{n} replies recorded")


def outcome(reply: str, parent: str | None) -> dict:
    p = interpret(reply, parent)
    return {"ok": p.ok, "how": p.how, "problem": p.problem, "tidied": list(p.tidied)}


def write_expected() -> None:
    expected = {}
    for f in sorted(HERE.glob("*.json")):
        if f.name == "expected.json":
            continue
        d = json.loads(f.read_text())
        expected[f.name] = {"reply": outcome(d["reply"], d.get("parent"))}
        if d.get("repair"):
            expected[f.name]["repair"] = outcome(d["repair"]["reply"], d.get("parent"))
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"expected.json: {len(expected)} recordings")


if __name__ == "__main__":
    if "--expect" in sys.argv:
        write_expected()
        raise SystemExit(0)
    args = [a for a in sys.argv[2:] if not a.startswith("--")]
    main(sys.argv[1], args or ["CartPole-v1"], (1,) if "--quick" in sys.argv else (1, 2))
