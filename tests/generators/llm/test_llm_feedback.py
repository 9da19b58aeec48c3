"""What a model is shown about a parent: traced last decisions, lineage, inspirations, in budget.

The traces are real: a known bad CartPole policy is evaluated and then replayed in the sandbox's
tracing worker (the same worker ``scriptrl explain`` uses), so the line that chose the fatal
actions is whatever the tracer reports.
"""

from __future__ import annotations

import pytest

from scriptrl.envs import resolve_env
from scriptrl.evaluate import evaluate
from scriptrl.generators.base import GenContext, ParentInfo
from scriptrl.generators.llm import prompts
from scriptrl.generators.llm.feedback import estimate_tokens, fitted
from scriptrl.generators.parent_facts import Inspiration, LineageStep, ParentFacts, TracedEnd, TracedStep
from scriptrl.search.parent_context import inspirations, lineage, trace_worst
from scriptrl.search.population import Member, Population
from scriptrl.seeds import SeedSplits

#: Pushes left unless the pole leans past 0.3 rad, which CartPole ends at 0.2095: it never pushes right.
BAD = "def policy(obs):\n    angle = obs[2]\n    if angle > 0.3:\n        return 1\n    return 0\n"


def _digest(source: str, renv, n: int = 4) -> tuple[float, dict]:
    res = evaluate(source, renv, SeedSplits().train(0, n)).to_dict()
    episodes = res["episodes"]
    return res["mean"], {"episodes": len(episodes), "mean": res["mean"], "digest": episodes}


def test_the_prompt_shows_the_line_that_chose_the_fatal_actions_of_a_real_episode():
    renv = resolve_env("CartPole-v1")
    mean, digest = _digest(BAD, renv)
    worst = min(digest["digest"], key=lambda e: (e["ret"], e["seed"]))
    traced = trace_worst(BAD, renv, digest["digest"])
    assert traced and traced[0].seed == worst["seed"] and traced[0].length == worst["length"]
    last = traced[0].steps[-1]
    assert last.step == worst["length"] and last.line == 5 and last.code == "return 0"
    assert last.conditions == (("angle > 0.3", False),)

    ctx = GenContext.for_env(renv)
    parent = ParentInfo(1, BAD, mean, digest, ParentFacts(traced))
    messages, _ = prompts.mutate_prompt(ctx, parent, 0.7, None)
    text = messages.turns[0][1]
    assert (
        f"Episode seed {worst['seed']}: return {worst['ret']:.2f}, terminated after {worst['length']} steps"
        in text
    )
    assert f"step {worst['length']}: [" in text
    assert "-> 0 (push_left) by line 5 `return 0`; `angle > 0.3` was False" in text
    # the traced steps replace the untraced "last steps of the worst episode"
    assert "Last steps of the worst episode" not in text


def _big_facts() -> ParentFacts:
    long_program = "def policy(obs):\n" + "".join(f"    x{i} = obs[0] * {i}.123456\n" for i in range(60))
    steps = tuple(
        TracedStep(k, [0.123456, -1.23456, 0.0123456, 2.3456], 0, 5, "return 0", (("angle > 0.3", False),))
        for k in range(1, 6)
    )
    return ParentFacts(
        traced=tuple(TracedEnd(100000 + i, 9.0, 5, "terminated", None, steps) for i in range(2)),
        lineage=tuple(
            LineageStep(10 - i, 9 - i, "llm.mutate", 20.0 - i, 21.0 - i, ("a = 1.0",) * 4, ("a = 2.0",) * 4)
            for i in range(3)
        ),
        inspirations=tuple(Inspiration(50 + i, 100.0, long_program, i) for i in range(2)),
        scores=(1.0, 2.0, 3.0),
    )


def test_the_feedback_stays_within_its_token_budget_and_the_prompt_within_the_context():
    renv = resolve_env("CartPole-v1")
    desc = renv.description
    facts = _big_facts()
    rich = fitted(facts, desc, 10_000)
    assert rich["traces"].count("step ") == 10 and rich["inspirations"].count("```python") == 2
    for budget in (900, 400, 150):
        out = fitted(facts, desc, budget)
        assert estimate_tokens("".join(out.values())) <= budget
    assert "step 5:" in fitted(facts, desc, 400)["traces"]  # a small budget keeps the fatal step
    ctx = GenContext.for_env(renv)
    parent = ParentInfo(1, BAD, 9.0, None, facts)
    for context in (3500, 1800):
        messages, _ = prompts.mutate_prompt(ctx, parent, 0.7, None, context_tokens=context)
        assert estimate_tokens(messages.system + messages.turns[0][1]) <= context
    whole, _ = prompts.mutate_prompt(ctx, parent, 0.7, None, budget_tokens=10_000)
    trimmed, _ = prompts.mutate_prompt(ctx, parent, 0.7, None, context_tokens=1800)
    assert len(trimmed.turns[0][1]) < len(whole.turns[0][1])


def test_the_lineage_says_what_each_edit_changed_and_whether_it_helped(tmp_path):
    from scriptrl.program import Program
    from scriptrl.store import RunStore

    store = RunStore.create(tmp_path / "run", {"env": "CartPole-v1"})
    sources = [
        "def policy(obs):\n    return 0\n",
        "def policy(obs):\n    return 1 if obs[2] > 0.0 else 0\n",
        "def policy(obs):\n    return 1 if obs[2] + 0.5 * obs[3] > 0.0 else 0\n",
    ]
    ids: list[int] = []
    for k, src in enumerate(sources):
        ids.append(
            store.add_program(
                src,
                Program(src).normalized_hash,
                tuple(ids[-1:]),
                "llm.mutate",
                "structural",
                0.7,
                None,
                k,
                "",
            )
        )
    scores = dict(zip(ids, (9.0, 42.0, 30.0), strict=True))
    steps = lineage(store, ids[-1], scores.get)
    store.close()
    assert [(s.child, s.parent) for s in steps] == [(ids[2], ids[1]), (ids[1], ids[0])]
    assert steps[0].removed == ("return 1 if obs[2] > 0.0 else 0",)
    assert steps[0].added == ("return 1 if obs[2] + 0.5 * obs[3] > 0.0 else 0",)
    assert steps[0].helped is False and steps[1].helped is True
    text = fitted(
        ParentFacts(lineage=steps, scores=(9.0, 42.0, 30.0)), resolve_env("CartPole-v1").description, 900
    )
    assert (
        f"Program {ids[2]} came from {ids[1]} by llm.mutate: 42.00 -> 30.00, it did not help."
        in text["lineage"]
    )
    assert "9.00 -> 42.00 -> 30.00 (this program)" in text["lineage"]


def test_inspirations_are_the_best_distinct_programs_of_other_islands():
    pop = Population.empty(3, 6)
    pop.islands[0].offer(Member(1, 50.0, "parent-niche"), 6)
    pop.islands[0].offer(Member(2, 400.0, "home-best"), 6)  # the parent's own island: not shown
    pop.islands[1].offer(Member(3, 300.0, "parent-niche"), 6)  # the parent's structure: nothing new
    pop.islands[1].offer(Member(4, 200.0, "b"), 6)
    pop.islands[2].offer(Member(5, 250.0, "c"), 6)
    pop.islands[2].offer(Member(6, 100.0, "c2"), 6)
    pop.islands[1].offer(Member(7, 90.0, "c"), 6)  # same structure as 5 on another island: 5 is better
    shown = inspirations(pop, 1, k=3)
    assert [(i.id, i.island) for i in shown] == [(5, 2), (4, 1), (6, 2)]
    assert all(i.island != 0 for i in shown)
    assert inspirations(pop, 1, k=1)[0].id == 5


@pytest.mark.slow
def test_the_real_tokenizer_counts_no_more_than_the_estimate(tmp_path):
    """One real call to the embedded 0.5B model with a traced parent: the server's own prompt
    token count (stored with every call) stays within the estimate the budget is kept by."""
    pytest.importorskip("xllamacpp", reason="the embedded model needs the llm extra")
    import random

    from scriptrl.generators.llm import build_generator
    from scriptrl.generators.llm.settings import LLMSettings, check, decide
    from scriptrl.generators.llm.weights import SMALL_MODEL, pull

    pull(SMALL_MODEL)
    renv = resolve_env("CartPole-v1")
    mean, digest = _digest(BAD, renv)
    facts = ParentFacts(trace_worst(BAD, renv, digest["digest"]), inspirations=_big_facts().inspirations[:1])
    parent = ParentInfo(1, BAD, mean, digest, facts)
    ctx = GenContext.for_env(renv)
    s = check(decide(LLMSettings(model=SMALL_MODEL, n_ctx=4096, max_tokens=8, seed=1, repair=False)))
    gen = build_generator(s, say=lambda m: None)
    try:
        cand = gen.mutate(ctx, parent, 0.7, random.Random(0))
    finally:
        gen.close()
    calls = [cand.call] if cand is not None else [c for _, c in gen.drain_calls()]
    messages, _ = prompts.mutate_prompt(
        ctx, parent, 0.7, None, "auto", s.feedback_tokens, s.n_ctx - s.max_tokens
    )
    estimate = estimate_tokens(messages.system + messages.turns[0][1])
    real = calls[0].prompt_tokens
    assert "by line 5 `return 0`" in messages.turns[0][1]
    assert 0.5 * estimate < real <= estimate + 32  # 32: the chat template's own tokens
