"""What ``explain`` says of each failed episode: how it ended, and its last decisions.

A failed episode ("a crash") is one the environment's success rule judges unsuccessful, or,
where the environment defines no success, one that terminated (rather than ran out of time);
an episode the evaluation loop ended (an exception, an invalid action) always counts. For each
one ``explain`` keeps the last N decisions: the step, the action (named when the description
names actions), the line that returned it, every condition the call tested with its truth
value and the numbers it compared (the tracing worker records comparison operands), and the
observation, named by the description's readings. The worst ones (ended by termination or
failure before merely unsuccessful ones, then lowest return) can be rendered as GIFs by
``scriptrl render``'s own episode renderer.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scriptrl.envs import ResolvedEnv
    from scriptrl.evaluate.observer import Step
    from scriptrl.program import Program

#: Decisions kept per failed episode unless asked otherwise (``explain --last``).
DEFAULT_LAST = 5
#: How many of the worst failures get a GIF (``explain --gifs DIR``, ``report --crashes``).
GIF_COUNT = 3


def is_failure(end: str, success: bool | None) -> bool:
    """Failed by the success rule; without one, terminated; an episode the loop ended, always."""
    if end == "failure":
        return True
    return success is False if success is not None else end == "terminated"


def _severity(crash: dict) -> tuple:
    """Worst first: ended by termination or failure, then the lowest return, then the shortest."""
    return (crash["end"] not in ("terminated", "failure"), crash["return"], crash["length"], crash["seed"])


def _number(x: Any) -> Any:
    return round(x, 4) if isinstance(x, float) else x


class LastDecisions:
    """An episode-loop observer keeping each episode's last ``last`` decisions, traced and named."""

    def __init__(self, program: Program, renv: ResolvedEnv, sites: list, last: int = DEFAULT_LAST) -> None:
        from scriptrl.sandbox.trace_worker import condition_operands

        self.sites, self.last = sites, last
        self.operands = condition_operands(program.source, program.name)
        self.lines = program.source.splitlines()
        desc = renv.description
        self.action_names = [a.name for a in desc.actions] if desc.action_kind == "discrete" else []
        self.readings = [c.name for c in desc.observation]
        self.tails: dict[int, deque] = {}

    def on_step(self, step: Step, env: Any) -> None:
        tail = self.tails.get(step.episode)
        if tail is None:
            tail = self.tails[step.episode] = deque(maxlen=self.last)
        tail.append(step)  # read into a decision only if the episode fails

    def decision(self, step: Step) -> dict:
        tr = step.trace or {"c": [], "v": [], "r": None}
        values: dict[int, dict[int, Any]] = {}
        for k, j, x in tr.get("v") or []:
            values.setdefault(k, {})[j] = x  # the last evaluation of a condition in this call
        conditions, seen = [], set()
        for k, truth in tr["c"]:
            if k in seen:
                continue
            seen.add(k)
            line, expr = self.sites[k]
            compared = [
                {"expr": self.operands[k][j], "value": _number(x)}
                for j, x in sorted(values.get(k, {}).items())
                if j < len(self.operands[k]) and self.operands[k][j]
            ]
            conditions.append({"line": line, "expr": expr, "value": truth, "compared": compared})
        line = tr["r"]
        action = step.action
        named = type(action) is int and 0 <= action < len(self.action_names)
        out = {
            "step": step.t,
            "action": action,
            "action_name": self.action_names[action] if named else None,
            "line": line,
            "code": self.lines[line - 1].strip() if line else None,
            "conditions": conditions,
            "observation": self.observation(step.obs),
            "reward": step.reward,
        }
        if step.error is not None:
            out["error"] = step.error
        return out

    def observation(self, obs: Any) -> Any:
        """The observation as ``{reading: value}`` when the description names each component."""
        flat = obs if isinstance(obs, list) else None
        if flat is not None and self.readings and len(flat) == len(self.readings):
            if all(isinstance(v, int | float) for v in flat):
                return {n: _number(float(v)) for n, v in zip(self.readings, flat, strict=True)}
        return obs

    def crashes(self, episodes: list[dict]) -> list[dict]:
        """Every failed episode with its last decisions, worst first."""
        out = []
        for i, e in enumerate(episodes):
            if is_failure(e["end"], e.get("success")):
                out.append({**e, "decisions": [self.decision(s) for s in self.tails.get(i, ())]})
        return sorted(out, key=_severity)


def render_worst(
    program: Program,
    renv: ResolvedEnv,
    crashes: list[dict],
    directory: str | Path,
    *,
    count: int = GIF_COUNT,
    unsafe_in_process: bool = False,
    scale: float = 1.0,
) -> list[Path]:
    """A GIF of each of the ``count`` worst crashes (``scriptrl render``'s renderer, the same seed),
    written as ``DIR/seed-<seed>.gif``; each crash gets its ``gif`` path and ``gif_frames``."""
    from scriptrl.glassbox.render import render_episode

    paths = []
    for crash in crashes[:count]:
        out = Path(directory).expanduser() / f"seed-{crash['seed']}.gif"
        info = render_episode(
            program, renv, out, seed=crash["seed"], scale=scale, unsafe_in_process=unsafe_in_process
        )
        crash["gif"], crash["gif_frames"] = str(out), info["frames"]
        paths.append(out)
    return paths
