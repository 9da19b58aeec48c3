"""What a model is shown about a parent, gathered on the trusted side before it writes.

* **How its worst episodes ended**, line by line: the parent replays its worst recorded
  episodes (same seeds) in the sandbox's tracing worker, as ``scriptrl explain`` does (the
  program is untrusted; the environment stays here), and the last few decisions are kept with
  the line that chose each action and how the conditions on the way came out.
* **Its lineage**: the last edits that led to it, what each changed (lines out, lines in) and
  whether it raised the training score.
* **Inspirations**: the best programs of other islands, one per structure, so a model can
  recombine ideas instead of rewriting one program (FunSearch, OpenEvolve).

A replay that fails (a worker that cannot start, a timeout) costs the prompt its trace, never
the round. Traces are cached per program: a parent is often picked again.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections import deque
from typing import TYPE_CHECKING

from scriptrl.envs import ResolvedEnv
from scriptrl.generators.base import ParentInfo
from scriptrl.generators.parent_facts import Inspiration, LineageStep, ParentFacts, TracedEnd, TracedStep

if TYPE_CHECKING:
    from scriptrl.search.loop import Search
    from scriptrl.search.population import Population
    from scriptrl.store import RunStore

#: Decisions kept before each traced episode's end, and worst episodes traced per parent.
LAST_STEPS = 5
WORST_EPISODES = 2
#: Edits of the lineage shown, and changed lines kept per edit.
LINEAGE_DEPTH = 3
DIFF_LINES = 4


def trace_worst(
    source: str, renv: ResolvedEnv, episodes: list[dict], n: int = WORST_EPISODES, last: int = LAST_STEPS
) -> tuple[TracedEnd, ...]:
    """Replay the ``n`` lowest-return episodes of a digest that did not simply run out of time,
    traced in the sandbox, keeping their last ``last`` decisions."""
    from scriptrl.errors import UserError
    from scriptrl.glassbox.trace import run_episodes
    from scriptrl.program import Program
    from scriptrl.sandbox.trace_worker import instrument

    worst = sorted(
        (
            e
            for e in episodes
            if isinstance(e, dict) and isinstance(e.get("seed"), int) and e.get("end") != "truncated"
        ),
        key=lambda e: (_ret(e), e["seed"]),
    )[:n]
    if not worst:
        return ()
    try:
        _, sites = instrument(source)
    except SyntaxError:
        return ()
    lines = source.splitlines()
    tails: dict[int, deque] = {}

    def on_step(step, env) -> None:
        tr = step.trace or {}
        line = tr.get("r")
        seen: dict[int, bool] = {}
        for k, v in tr.get("c") or []:
            seen.setdefault(k, v)  # the first time each condition was tested in this call
        tails.setdefault(step.episode, deque(maxlen=last)).append(
            TracedStep(
                step.t + 1,
                _obs(step.obs),
                _plain(step.action),
                line,
                lines[line - 1].strip() if line else "(no return reached)",
                tuple((sites[k][1], v) for k, v in seen.items()),
                step.error,
            )
        )

    try:
        ends, _ = run_episodes(
            Program(source), renv, [e["seed"] for e in worst], traced=True, on_step=on_step, sites=len(sites)
        )
    except (UserError, OSError, RuntimeError, ValueError):
        return ()
    return tuple(
        TracedEnd(e.seed, float(e.ret), int(e.length), str(e.end), e.reason, tuple(tails.get(i, ())))
        for i, e in enumerate(ends)
    )


def lineage(store: RunStore, pid: int, score, depth: int = LINEAGE_DEPTH) -> tuple[LineageStep, ...]:
    """The last ``depth`` edits leading to ``pid``, nearest first; ``score(pid)`` is a program's
    training score or None."""
    out: list[LineageStep] = []
    current = store.program(pid)
    while len(out) < depth:
        parents = current.get("parents") or []
        if not parents:
            break
        parent = store.program(int(parents[0]))
        removed, added = _changed(parent["source"], current["source"])
        out.append(
            LineageStep(
                int(current["id"]),
                int(parent["id"]),
                str(current.get("generator") or "?"),
                score(int(current["id"])),
                score(int(parent["id"])),
                removed,
                added,
            )
        )
        current = parent
    return tuple(out)


def inspirations(population: Population, pid: int, k: int = 2) -> tuple[Inspiration, ...]:
    """The best programs of islands other than the parent's, of structures unlike the parent's
    and each other's, best first."""
    home = next(
        (i for i, isl in enumerate(population.islands) if any(m.id == pid for m in isl.members)), None
    )
    own = population.member(pid)
    taken = {own.niche} if own is not None else set()
    pool = sorted(
        ((m, i) for i, isl in enumerate(population.islands) if i != home for m in isl.members),
        key=lambda mi: (-mi[0].score, mi[0].id),
    )
    out: list[tuple[int, float, int]] = []
    for m, i in pool:
        if m.id == pid or m.niche in taken:
            continue
        taken.add(m.niche)
        out.append((m.id, m.score, i))
        if len(out) == k:
            break
    return tuple(Inspiration(mid, score, "", island) for mid, score, island in out)


def _changed(before: str, after: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    removed: list[str] = []
    added: list[str] = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        text = line[1:].strip()
        if not text:
            continue
        (removed if line.startswith("-") else added).append(text[:120])
    return tuple(removed[:DIFF_LINES]), tuple(added[:DIFF_LINES])


def _ret(e: dict) -> float:
    r = e.get("return")
    return float(r) if isinstance(r, int | float) else 0.0


def _plain(x: object) -> object:
    tolist = getattr(x, "tolist", None)
    return tolist() if callable(tolist) else x


def _obs(x: object) -> list | str:
    """An observation as the prompt shows it: a list of numbers where it is one, else its text."""
    plain = _plain(x)
    return plain if isinstance(plain, list) else str(plain)


def with_facts(s: Search, parent: ParentInfo) -> ParentInfo:
    """``parent`` with its traced worst episodes, lineage and inspirations attached."""
    traced = s.traces.get(parent.id)
    if traced is None:
        episodes = (parent.digest or {}).get("digest") or []
        traced = trace_worst(parent.source, s.env, [e for e in episodes if isinstance(e, dict)])
        s.traces[parent.id] = traced

    def score(pid: int) -> float | None:
        m = s.population.member(pid)
        if m is not None and m.n:
            return m.score
        row = s.store.selection_score(pid)
        mean = row.get("mean") if row else None
        return float(mean) if isinstance(mean, int | float) else None

    steps = lineage(s.store, parent.id, score)
    shown = tuple(
        Inspiration(i.id, i.score, s.store.program(i.id)["source"], i.island)
        for i in inspirations(s.population, parent.id)
    )
    scores = tuple(v for v in [*(st.parent_score for st in reversed(steps)), parent.score] if v is not None)
    return dataclasses.replace(parent, facts=ParentFacts(traced, steps, shown, scores))
