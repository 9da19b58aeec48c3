"""What the search tells a model about a parent beyond its source and score: plain typed facts.

The search gathers them on the trusted side (``search/parent_context.py``): how the parent's
worst episodes ended, traced in the sandbox's tracing worker (which line chose each of the last
actions and how its conditions came out), what the last edits in its lineage changed and whether
they helped, and the best distinct programs of other islands. A generator only renders them
(``generators/llm/feedback.py``); none of them holds anything but data.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TracedStep:
    """One decision near the end of an episode, as the tracer saw it."""

    step: int  # 1-based step number within the episode
    obs: list | str
    action: object
    line: int | None  # the line whose ``return`` produced the action
    code: str  # that line's text
    conditions: tuple[tuple[str, bool], ...] = ()  # (condition text, how it came out), in order
    error: str | None = None


@dataclass(frozen=True)
class TracedEnd:
    """One of a parent's worst episodes, replayed under the tracer on the same seed."""

    seed: int
    ret: float
    length: int
    end: str  # terminated | truncated | failure
    reason: str | None
    steps: tuple[TracedStep, ...] = ()


@dataclass(frozen=True)
class LineageStep:
    """One edit in a parent's ancestry: what changed from ``parent`` to ``child`` and whether it helped."""

    child: int
    parent: int
    generator: str
    child_score: float | None
    parent_score: float | None
    removed: tuple[str, ...] = ()  # lines of the parent the edit took out
    added: tuple[str, ...] = ()  # lines it put in

    @property
    def helped(self) -> bool | None:
        if self.child_score is None or self.parent_score is None:
            return None
        return self.child_score > self.parent_score


@dataclass(frozen=True)
class Inspiration:
    """A good program of another island, shown beside the parent for ideas."""

    id: int
    score: float
    source: str
    island: int


@dataclass(frozen=True)
class ParentFacts:
    traced: tuple[TracedEnd, ...] = ()
    lineage: tuple[LineageStep, ...] = ()  # nearest edit first
    inspirations: tuple[Inspiration, ...] = ()
    scores: tuple[float, ...] = field(default=())  # the lineage's scores, oldest first, ending at the parent
