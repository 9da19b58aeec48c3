"""Prompts: templates from ``scriptrl/generators/prompts/*.md``, filled with what the search knows.

The wording lives in Markdown files so it can be read, reviewed and tuned without touching
code. A template uses ``{{name}}`` for a value and ``{{#name}} ... {{/name}}`` for a part
that appears only when the value is not empty. ``fragments.md`` holds short pieces
(``## name`` sections) that the code picks by situation: the reply format, how bold a change
to ask for at the current temperature, and a hint per first program so they differ.

The feedback a mutation prompt carries is built here from a parent's stored evaluation
digest: how and when episodes ended, which actions were used, program errors, and the
observations just before the worst episode ended. That is what lets a model reason about
*why* a program scores what it does instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from scriptrl.generators.base import GenContext, ParentInfo
from scriptrl.generators.llm.values_text import action_text, obs_text
from scriptrl.program import ALLOWED_IMPORTS

PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts"
_VAR = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_SECTION = re.compile(r"\{\{#([a-z_]+)\}\}\n?(.*?)\{\{/\1\}\}\n?", re.S)
#: Parent programs longer than this many lines are changed through SEARCH/REPLACE edits
#: (in ``edits = "auto"`` mode): re-typing a long program wastes tokens and invites drift.
EDIT_LINES = 40
TAIL_STEPS = 3  # tokens a small local model must read before it writes
#: Estimated tokens the parent's traced episodes, lineage and inspirations may add to a prompt.
FEEDBACK_TOKENS = 700


class PromptError(ValueError):
    """A template that refers to a value the code does not provide."""


@cache
def template(name: str) -> str:
    return (PROMPT_DIR / f"{name}.md").read_text(encoding="utf-8")


@cache
def fragments() -> dict[str, list[str]]:
    """Sections of fragments.md by name; a name may repeat (the hints)."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in template("fragments").splitlines():
        if line.startswith("## "):
            current = []
            out.setdefault(line[3:].strip(), []).append(current)  # type: ignore[arg-type]
        elif current is not None:
            current.append(line)
    return {k: ["\n".join(v).strip() for v in vs] for k, vs in out.items()}


def fragment(name: str, index: int = 0) -> str:
    options = fragments()[name]
    return options[index % len(options)]


def render(name: str, **values: object) -> str:
    def section(m: re.Match) -> str:
        return m.group(2) if _filled(values.get(m.group(1))) else ""

    def var(m: re.Match) -> str:
        key = m.group(1)
        if key not in values:
            raise PromptError(f"prompt {name}.md uses {{{{{key}}}}}, which is not provided")
        return str(values[key] if values[key] is not None else "")

    text = _SECTION.sub(section, template(name))
    return _VAR.sub(var, text).strip() + "\n"


def _filled(v: object) -> bool:
    return v is not None and v != "" and v != []


@dataclass(frozen=True)
class Messages:
    """A chat: system text first, then alternating user/assistant turns."""

    system: str
    turns: tuple[tuple[str, str], ...]  # (role, content)

    def as_openai(self) -> list[dict]:
        return [
            {"role": "system", "content": self.system},
            *({"role": r, "content": c} for r, c in self.turns),
        ]

    def followed_by(self, assistant: str, user: str) -> Messages:
        return Messages(self.system, (*self.turns, ("assistant", assistant), ("user", user)))

    def as_text(self) -> str:
        """One plain document, for command-line agents that take a single prompt."""
        parts = [self.system]
        for role, content in self.turns:
            parts.append(content if role == "user" else f"(Your previous reply was:)\n{content}")
        return "\n\n---\n\n".join(parts)


def system() -> str:
    return render("system", allowed_imports=", ".join(sorted(ALLOWED_IMPORTS - {"__future__"})))


def ambition(temperature: float) -> str:
    """The search's temperature (0 .. 1.5) as words: a model follows "make a small change"
    better than it reacts to a sampling temperature alone."""
    if temperature < 0.5:
        return fragment("ambition_small")
    return fragment("ambition_medium") if temperature < 1.0 else fragment("ambition_bold")


def request(parent_source: str | None, edits: str) -> tuple[str, bool]:
    """The reply-format paragraph, and whether it asks for edits."""
    long = parent_source is not None and parent_source.count("\n") + 1 > EDIT_LINES
    use_edits = parent_source is not None and (edits == "edits" or (edits == "auto" and long))
    return fragment("request_edits" if use_edits else "request_full"), use_edits


def initial_prompt(ctx: GenContext, index: int, task: str | None) -> Messages:
    user = render(
        "initial",
        env=ctx.env.description.to_prompt(),
        task=task,
        hint=fragment("hint", index),
        request=fragment("request_full"),
    )
    return Messages(system(), (("user", user),))


def mutate_prompt(
    ctx: GenContext,
    parent: ParentInfo,
    temperature: float,
    task: str | None,
    edits: str = "auto",
    budget_tokens: int = FEEDBACK_TOKENS,
    context_tokens: int | None = None,
) -> tuple[Messages, bool]:
    """The prompt for a child of ``parent``. Its traced episodes, lineage and inspirations
    (``parent.facts``) take at most ``budget_tokens``, and no more than leaves the whole prompt
    within ``context_tokens`` (the model's context less its reply), both estimated."""
    from scriptrl.generators.llm.feedback import estimate_tokens, fitted, sections

    req, use_edits = request(parent.source, edits)
    traced = parent.facts is not None and bool(parent.facts.traced)
    values = dict(
        env=ctx.env.description.to_prompt(),
        score=_score(parent.score),
        source=parent.source.strip("\n"),
        feedback=feedback(ctx, parent, brief=traced),  # the traces replace the untraced last steps
        history=history(ctx),
        task=task,
        ambition=ambition(temperature),
        request=req,
    )
    desc = ctx.env.description
    if context_tokens is not None:
        bare = render("mutate", **values, **sections(None, desc))
        budget_tokens = min(budget_tokens, context_tokens - estimate_tokens(system() + bare))
    user = render("mutate", **values, **fitted(parent.facts, desc, max(0, budget_tokens)))
    return Messages(system(), (("user", user),)), use_edits


def crossover_prompt(
    ctx: GenContext, a: ParentInfo, b: ParentInfo, temperature: float, task: str | None
) -> Messages:
    user = render(
        "crossover",
        env=ctx.env.description.to_prompt(),
        score_a=_score(a.score),
        score_b=_score(b.score),
        source_a=a.source.strip("\n"),
        source_b=b.source.strip("\n"),
        feedback_a=feedback(ctx, a, brief=True),
        feedback_b=feedback(ctx, b, brief=True),
        task=task,
        ambition=ambition(temperature),
        request=fragment("request_full"),
    )
    return Messages(system(), (("user", user),))


def repair_prompt(problem: str, truncated: bool = False) -> str:
    return render("repair", problem=problem, truncated="yes" if truncated else "")


# --------------------------------------------------------------------------- feedback


def _score(x: float | None) -> str:
    return "not measured" if x is None or x != x else f"{x:.2f}"


def _num(x: object) -> str:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    return f"{x:.3g}"


def history(ctx: GenContext, n: int = 12) -> str:
    values = ctx.history[-n:]
    return ", ".join(_score(v) for v in values) if len(values) >= 2 else ""


def feedback(ctx: GenContext, parent: ParentInfo, brief: bool = False) -> str:
    """Plain sentences about a parent's dev episodes; empty-handed parents say so."""
    d = parent.digest or {}
    episodes = [e for e in (d.get("digest") or []) if isinstance(e, dict)]
    if not episodes:
        return "No episode details were recorded for this program."
    desc = ctx.env.description
    lines = []
    n = d.get("episodes") or len(episodes)
    stats = [f"mean {_score(d.get('mean'))}"]
    if d.get("std") is not None:
        stats.append(f"std {_score(d.get('std'))}")
    if d.get("min") is not None and d.get("max") is not None:
        stats.append(f"min {_score(d['min'])}, max {_score(d['max'])}")
    lines.append(f"Over {n} dev episodes: {', '.join(stats)}.")
    ends: dict[str, list[int]] = {}
    for e in episodes:
        ends.setdefault(str(e.get("end")), []).append(int(e.get("length") or 0))
    words = {
        "terminated": "terminated",
        "truncated": "reached the time limit",
        "failure": "failed with a program error",
    }
    parts = []
    for end, lengths in sorted(ends.items(), key=lambda kv: -len(kv[1])):
        lengths.sort()
        where = (
            f"after {lengths[0]} steps"
            if len(lengths) == 1
            else f"after {lengths[0]}-{lengths[-1]} steps (median {lengths[len(lengths) // 2]})"
        )
        parts.append(f"{len(lengths)} {words.get(end, end)} {where}")
    lines.append("Episodes: " + "; ".join(parts) + ".")
    flags = [e["success"] for e in episodes if isinstance(e.get("success"), bool)]
    if flags:  # the environment defines success: say how often, in its own words
        lines.append(f"Success ({desc.success_text or desc.success}): {sum(flags)} of {len(flags)} episodes.")
    actions = _action_use(episodes, desc)
    if actions:
        lines.append(actions)
    errors = [f for f in (d.get("failures") or []) if isinstance(f, dict)]
    if errors:
        first = errors[0]
        lines.append(
            f"Program error in {len(errors)} episode(s), e.g. seed {first.get('seed')} at step "
            f"{first.get('step')}: {str(first.get('reason'))[:200]}"
        )
    if brief:
        return "\n".join(lines)
    worst = min(episodes, key=lambda e: r if isinstance(r := e.get("return"), int | float) else 0.0)
    tail = [t for t in (worst.get("tail") or []) if isinstance(t, dict)][-TAIL_STEPS:]
    if tail and worst.get("end") != "truncated":
        length = int(worst.get("length") or 0)
        names = [c.name for c in desc.observation]
        header = f"[{', '.join(names)}]" if 1 < len(names) <= 12 else "obs"
        lines.append(
            f"Last steps of the worst episode (seed {worst.get('seed')}, "
            f"return {_score(worst.get('return'))}, "
            f"{worst.get('end')} after {length} steps), as {header} -> action:"
        )
        for k, t in enumerate(tail):
            step = length - len(tail) + k + 1
            lines.append(f"  step {step}: {obs_text(t.get('obs'))} -> {action_text(t.get('action'), desc)}")
    return "\n".join(lines)


def _action_use(episodes: list[dict], desc) -> str:
    hist: list[float] = []
    for e in episodes:
        h = (e.get("action_summary") or {}).get("histogram")
        if isinstance(h, list):
            hist = [a + b for a, b in zip(hist, h, strict=False)] + h[len(hist) :] if hist else list(h)
    total = sum(hist)
    if not total:
        means = [(e.get("action_summary") or {}).get("mean") for e in episodes]
        means = [m for m in means if isinstance(m, list)]
        if means:
            avg = [sum(col) / len(col) for col in zip(*means, strict=False)]
            return "Mean action per dimension: [" + ", ".join(f"{v:.3g}" for v in avg) + "]."
        return ""
    names = [a.name for a in desc.actions] if desc.action_kind == "discrete" else []
    used = [
        f"{i}{' ' + names[i] if i < len(names) else ''} {100 * c / total:.0f}%" for i, c in enumerate(hist)
    ]
    return "Actions taken: " + ", ".join(used) + "."
