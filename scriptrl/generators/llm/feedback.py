"""The parent's facts as prompt text a programmer would want, within a token budget.

What a person debugging a policy looks at: the last decisions before an episode failed, with
the line that returned each action and how the conditions on the way came out; what the last
edits changed and whether they helped; and what other good programs do differently. The facts
come from the search (``generators/parent_facts.py``); this module only words them and keeps
them small: the richest of a few levels of detail whose estimated size fits the budget.

Token counts are estimated (a Qwen-style tokenizer spends one token per digit, about one per
three other characters of code); the real count of every prompt is stored with its call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scriptrl.generators.llm.values_text import action_text, obs_text
from scriptrl.generators.parent_facts import Inspiration, LineageStep, ParentFacts, TracedEnd, TracedStep

#: Longest inspiration program shown, in lines (a longer one is cut with a note).
INSPIRATION_LINES = 30


@dataclass(frozen=True)
class Detail:
    """How much of the facts a prompt carries."""

    episodes: int
    steps: int
    lineage: int
    inspirations: int


#: From the richest to nothing: the first that fits the budget is used.
LEVELS = (
    Detail(2, 5, 3, 2),
    Detail(1, 5, 2, 2),
    Detail(1, 4, 2, 1),
    Detail(1, 3, 1, 1),
    Detail(1, 2, 0, 0),
    Detail(0, 0, 0, 0),
)


def estimate_tokens(text: str) -> int:
    """An upper-side estimate of a prompt's tokens: digits one each, other characters a third."""
    digits = sum(ch.isdigit() for ch in text)
    return digits + math.ceil((len(text) - digits) / 3.0)


def sections(facts: ParentFacts | None, desc, detail: Detail | None = None) -> dict[str, str]:
    """The prompt's extra sections at one level of detail (empty strings are left out)."""
    if facts is None or detail is None:
        return {"traces": "", "lineage": "", "inspirations": ""}
    return {
        "traces": traces_text(facts.traced[: detail.episodes], desc, detail.steps),
        "lineage": lineage_text(facts, detail.lineage) if detail.lineage else "",
        "inspirations": inspirations_text(facts.inspirations[: detail.inspirations]),
    }


def fitted(facts: ParentFacts | None, desc, budget_tokens: int) -> dict[str, str]:
    """The richest level of detail whose sections together fit ``budget_tokens``."""
    for detail in LEVELS:
        out = sections(facts, desc, detail)
        if estimate_tokens("".join(out.values())) <= budget_tokens:
            return out
    return sections(None, desc)


def traces_text(traced: tuple[TracedEnd, ...], desc, steps: int) -> str:
    lines: list[str] = []
    names = [c.name for c in desc.observation]
    if traced and 1 < len(names) <= 12:
        lines.append(f"Observations are [{', '.join(names)}].")
    for ep in traced:
        how = {"terminated": "terminated", "failure": "failed"}.get(ep.end, ep.end)
        why = f" ({ep.reason[:120]})" if ep.reason else ""
        lines.append(f"Episode seed {ep.seed}: return {ep.ret:.2f}, {how} after {ep.length} steps{why}.")
        for st in ep.steps[-steps:] if steps else ():
            lines.append("  " + step_text(st, names, desc))
    return "\n".join(lines)


def step_text(st: TracedStep, names: list[str], desc) -> str:
    obs = obs_text(st.obs, 200)
    if st.error is not None:
        return f"step {st.step}: {obs} -> {st.error[:120]}"
    text = f"step {st.step}: {obs} -> {action_text(st.action, desc)} by line {st.line} `{st.code[:100]}`"
    if st.conditions:
        text += "; " + ", ".join(f"`{c[:60]}` was {v}" for c, v in st.conditions[:4])
    return text


def lineage_text(facts: ParentFacts, depth: int) -> str:
    lines: list[str] = []
    if len(facts.scores) >= 2:
        lines.append(
            "Training score along its ancestry, oldest first: "
            + " -> ".join(f"{v:.2f}" for v in facts.scores)
            + " (this program)."
        )
    for st in facts.lineage[:depth]:
        lines.append(_edit_text(st))
    return "\n".join(lines)


def _edit_text(st: LineageStep) -> str:
    verdict = {True: "it helped", False: "it did not help", None: "not compared"}[st.helped]
    before = "?" if st.parent_score is None else f"{st.parent_score:.2f}"
    after = "?" if st.child_score is None else f"{st.child_score:.2f}"
    out = [f"Program {st.child} came from {st.parent} by {st.generator}: {before} -> {after}, {verdict}."]
    out += [f"  took out: `{line}`" for line in st.removed]
    out += [f"  put in:   `{line}`" for line in st.added]
    if not st.removed and not st.added:
        out.append("  (same code, new constants)")
    return "\n".join(out)


def inspirations_text(shown: tuple[Inspiration, ...]) -> str:
    parts = []
    for insp in shown:
        lines = insp.source.strip("\n").splitlines()
        cut = len(lines) > INSPIRATION_LINES
        body = "\n".join(lines[:INSPIRATION_LINES]) + ("\n# ... (cut)" if cut else "")
        parts.append(
            f"Program {insp.id} from another island (training score {insp.score:.2f}):\n"
            f"```python\n{body}\n```"
        )
    return "\n".join(parts)
