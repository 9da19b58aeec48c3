"""``scriptrl explain``: which lines of a policy ran, and which line and conditions chose each action.

Where the policy runs: in the tracing sandbox worker (``scriptrl.sandbox.trace_worker``),
a fresh, locked-down interpreter like the evaluation worker, because tracing must happen
where the code runs and the code may be untrusted. ``--unsafe-in-process`` runs a
*trusted* file in this process instead, exactly as ``scriptrl eval`` does. The
environment stays here; the worker only turns observations into actions plus a trace,
and both are validated before use. Nothing in ``train`` or ``eval`` imports this module.

``run_episodes`` (used by explain, verify and render) is the evaluation loop of
``scriptrl.evaluate`` with an observer: it hands over every observation, action, trace or
frame, which ``evaluate`` itself deliberately does not keep.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scriptrl.envs import ResolvedEnv, resolve_env
from scriptrl.errors import UserError
from scriptrl.evaluate.observer import Step, run_observed
from scriptrl.glassbox.crashes import DEFAULT_LAST, LastDecisions, render_worst
from scriptrl.program import ALLOWED_IMPORTS, Program
from scriptrl.sandbox.client import (
    InProcessWorker,
    ProgramLoadError,
    SandboxLimits,
    SandboxWorker,
    TraceWorker,  # noqa: F401  (re-exported: the tracing worker's client)
    WorkerFailure,
)
from scriptrl.sandbox.client import open_worker as _open_checked

if TYPE_CHECKING:
    from scriptrl.evaluate import Episode

#: Seconds for one batch, plus per observation: tracing makes a call several times slower.
CALL_TIMEOUT = 5.0
PER_ACTION_TIMEOUT = 0.1


def _user_error(program: Program, e: ProgramLoadError | WorkerFailure) -> UserError:
    if isinstance(e, ProgramLoadError):
        return UserError(f"{program.name} failed to load: {e}")
    if e.reason.startswith("refused:"):
        return UserError(e.reason + ", or use --unsafe-in-process for a file you trust")
    return UserError(f"the sandbox worker failed: {e.reason} (see `scriptrl doctor`)")


def open_worker(
    program: Program,
    codec: dict,
    seed: int,
    *,
    traced: bool = False,
    unsafe: bool = False,
    limits: SandboxLimits | None = None,
) -> SandboxWorker | InProcessWorker:
    """``sandbox.client.open_worker`` for a command a person runs: its failures as one-line UserErrors."""
    try:
        return _open_checked(
            program.source,
            program.name,
            codec,
            seed,
            allowed_imports=sorted(ALLOWED_IMPORTS),
            limits=limits,
            traced=traced,
            unsafe=unsafe,
        )
    except (ProgramLoadError, WorkerFailure) as e:
        raise _user_error(program, e) from None


# --------------------------------------------------------------------------- the episode loop


def _clean_trace(t: Any, n_sites: int, n_lines: int) -> dict:
    """Keep only well-formed entries: the trace comes from the untrusted worker."""
    out: dict[str, Any] = {"l": [], "s": [], "c": [], "v": [], "r": None, "e": False}
    if not isinstance(t, dict):
        return out

    def line_ok(v: Any) -> bool:
        return type(v) is int and 1 <= v <= n_lines

    for item in t.get("l") or []:
        if (
            isinstance(item, list)
            and len(item) == 2
            and line_ok(item[0])
            and type(item[1]) is int
            and item[1] > 0
        ):
            out["l"].append((item[0], item[1]))
    out["s"] = [v for v in (t.get("s") or [])[:400] if line_ok(v)] if isinstance(t.get("s"), list) else []
    for item in (t.get("c") or [])[:400] if isinstance(t.get("c"), list) else []:
        if (
            isinstance(item, list)
            and len(item) == 2
            and type(item[0]) is int
            and 0 <= item[0] < n_sites
            and item[1] in (0, 1)
        ):
            out["c"].append((item[0], bool(item[1])))
    for item in (t.get("v") or [])[:400] if isinstance(t.get("v"), list) else []:
        if (
            isinstance(item, list)
            and len(item) == 3
            and type(item[0]) is int
            and 0 <= item[0] < n_sites
            and type(item[1]) is int
            and 0 <= item[1] < 64
            and ((type(item[2]) is float and math.isfinite(item[2])) or item[2] in ("inf", "-inf", "nan"))
        ):
            out["v"].append((item[0], item[1], item[2] if isinstance(item[2], str) else float(item[2])))
    out["r"] = t.get("r") if line_ok(t.get("r")) else None
    out["e"] = t.get("e") is True
    return out


class _Callbacks:
    """The two callbacks of ``run_episodes`` as the loop's observer; traces cleaned before use."""

    def __init__(self, on_reset, on_step, traced: bool, sites: int, n_lines: int) -> None:
        self.reset_cb, self.step_cb = on_reset, on_step
        self.traced, self.sites, self.n_lines = traced, sites, n_lines

    def on_reset(self, episode: int, env: Any) -> None:
        if self.reset_cb:
            self.reset_cb(episode, env)

    def on_step(self, step: Step, env: Any) -> None:
        if self.step_cb:
            step.trace = _clean_trace(step.trace, self.sites, self.n_lines) if self.traced else None
            self.step_cb(step, env)


def run_episodes(
    program: Program,
    renv: ResolvedEnv,
    seeds: Sequence[int],
    *,
    traced: bool = False,
    unsafe: bool = False,
    worker_seed: int | None = None,
    make_kwargs: dict | None = None,
    on_reset: Callable[[int, Any], None] | None = None,
    on_step: Callable[[Step, Any], None] | None = None,
    sites: int = 0,
) -> tuple[list[Episode], dict[str, str]]:
    """Run one episode per seed in lock-step through the evaluation loop, calling back on every decision.

    Like ``evaluate``: actions are validated before ``env.step``, an invalid one or an
    exception ends that episode as a failure, and a worker that hangs is killed. Unlike it,
    every observation and action (and trace) is handed to ``on_step``, a worker failure is
    not retried, and a program or worker that cannot start is a UserError.
    """
    from scriptrl.evaluate import EvalConfig

    config = EvalConfig(
        call_timeout=CALL_TIMEOUT,
        per_action_timeout=PER_ACTION_TIMEOUT,
        episode_timeout=math.inf,
        max_concurrency=max(1, len(seeds)),
        max_restarts=0,
        unsafe_in_process=unsafe,
    )
    observer = _Callbacks(on_reset, on_step, traced, sites, len(program.source.splitlines()) or 1)
    try:
        return run_observed(
            program,
            renv,
            [int(s) for s in seeds],
            config,
            observer,
            traced=traced,
            worker_seed=worker_seed,
            make_kwargs=make_kwargs,
        )
    except (ProgramLoadError, WorkerFailure) as e:
        raise _user_error(program, e) from None


# --------------------------------------------------------------------------- explain


@dataclass
class Rule:
    """Every decision that produced one action through one line: a rule a person can read."""

    action: Any
    action_name: str
    line: int | None
    code: str
    count: int
    share: float
    conditions: list[dict] = field(default_factory=list)  # constant within the rule: line, expr, value
    paths: int = 1  # distinct condition paths that led here
    action_stats: dict | None = None  # continuous actions: mean, min, max per component


@dataclass
class Explanation:
    env_id: str
    env_label: str
    gymnasium_version: str
    program: str
    source: list[str]
    seeds: list[int]
    episodes: list[dict]
    decisions: int
    line_runs: dict[int, int]  # total times each line ran
    line_decisions: dict[int, int]  # decisions in which each line ran at least once
    conditions: list[dict]  # per condition: line, expr, true, false
    rules: list[Rule]
    isolation: dict[str, str]
    # every failed episode, worst first: how it ended and its last decisions (``crashes.py``)
    crashes: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["line_runs"] = {str(k): v for k, v in self.line_runs.items()}
        d["line_decisions"] = {str(k): v for k, v in self.line_decisions.items()}
        return d


def _action_key(a: Any) -> Any:
    return tuple(a) if isinstance(a, list) else a


def _new_group() -> dict:
    return {"count": 0, "first": Counter(), "present": Counter(), "paths": Counter(), "actions": []}


class _Tally:
    """What ``explain`` counts per decision (lines, conditions, rules); optionally a JSON log line."""

    def __init__(self, sites: list, lines: list[str], discrete: bool, log_file: Any = None) -> None:
        self.sites, self.lines, self.discrete, self.log_file = sites, lines, discrete, log_file
        self.line_runs: Counter[int] = Counter()
        self.line_decisions: Counter[int] = Counter()
        self.cond_counts = [[0, 0] for _ in sites]
        self.groups: dict[tuple, dict] = {}
        self.decisions = 0

    def on_step(self, step: Step, env: Any) -> None:
        tr = step.trace or {"l": [], "s": [], "c": [], "r": None, "e": False}
        self.decisions += 1
        for n, c in tr["l"]:
            self.line_runs[n] += c
            self.line_decisions[n] += 1
        first: dict[int, bool] = {}
        for k, v in tr["c"]:
            self.cond_counts[k][0 if v else 1] += 1
            first.setdefault(k, v)
        path = tuple(first.items())[:12]
        if step.error is not None:
            key: tuple = ("exception" if step.error.startswith("exception") else "invalid", tr["r"], ())
        elif self.discrete:
            key = (_action_key(step.action), tr["r"], ())
        else:  # no action value to group by: each path through the conditions is its own rule
            key = ("continuous", tr["r"], path)
        g = self.groups.setdefault(key, _new_group())
        g["count"] += 1
        for k, v in first.items():
            g["present"][k] += 1
            g["first"][(k, v)] += 1
        g["paths"][path] += 1
        if not self.discrete and step.action is not None:
            g["actions"].append(step.action)
        if self.log_file is not None:
            self._log(step, tr)

    def _log(self, step: Step, tr: dict) -> None:
        record = {
            "episode": step.episode,
            "seed": step.seed,
            "step": step.t,
            "obs": step.obs,
            "action": step.action,
            "reward": step.reward,
            "line": tr["r"],
            "code": self.lines[tr["r"] - 1].strip() if tr["r"] else None,
            "conditions": [
                {"line": self.sites[k][0], "expr": self.sites[k][1], "value": v} for k, v in tr["c"]
            ],
            "lines": tr["s"],
        }
        if step.error is not None:
            record["error"] = step.error
        self.log_file.write(json.dumps(record, allow_nan=False, default=str) + "\n")

    def merged_groups(self) -> dict[tuple, dict]:
        """Continuous actions: too many distinct paths on one line read worse than one rule for the line."""
        per_line = Counter((k[0], k[1]) for k in self.groups if k[0] == "continuous")
        merged: dict[tuple, dict] = {}
        for (akey, line, path), g in self.groups.items():
            key = (akey, line, () if per_line.get((akey, line), 0) > 8 else path)
            m = merged.setdefault(key, _new_group())
            for name in ("first", "present", "paths"):
                m[name].update(g[name])
            m["count"] += g["count"]
            m["actions"] += g["actions"]
        return merged

    def rules(self, names: list[str]) -> list[Rule]:
        """One rule per merged group, with the conditions that held the same way every time."""
        rules = []
        for (akey, line, _), g in self.merged_groups().items():
            n = g["count"]
            conds = []
            for (k, v), c in g["first"].items():
                if c == n and g["present"][k] == n:
                    conds.append({"line": self.sites[k][0], "expr": self.sites[k][1], "value": v})
            action, name = self._action_named(akey, names)
            rules.append(
                Rule(
                    action=action,
                    action_name=name,
                    line=line,
                    code=self.lines[line - 1].strip() if line else "(no return reached)",
                    count=n,
                    share=n / self.decisions if self.decisions else 0.0,
                    conditions=conds,
                    paths=len(g["paths"]),
                    action_stats=_action_stats(g["actions"]),
                )
            )
        rules.sort(key=lambda r: (-r.count, str(r.action), r.line or 0))
        return rules

    def _action_named(self, akey: Any, names: list[str]) -> tuple[Any, str]:
        if akey in ("exception", "invalid"):
            return None, "exception" if akey == "exception" else "invalid action"
        if akey == "continuous":
            return None, "continuous"
        action = list(akey) if isinstance(akey, tuple) else akey
        discrete_name = self.discrete and isinstance(akey, int) and 0 <= akey < len(names)
        return action, names[akey] if discrete_name else str(action)


def _action_stats(actions: list) -> dict | None:
    if not actions:
        return None
    arr = np.asarray(actions, dtype=np.float64).reshape(len(actions), -1)
    return {
        "mean": arr.mean(0).round(4).tolist(),
        "min": arr.min(0).round(4).tolist(),
        "max": arr.max(0).round(4).tolist(),
    }


def _open_log(log: str | Path | None) -> Any:
    if log is None:
        return None
    try:
        return open(log, "w", encoding="utf-8")  # noqa: SIM115 - explain closes it in a finally
    except OSError as e:
        raise UserError(f"cannot write the decision log {log}: {e.strerror}") from None


def _episode_row(e: Episode) -> dict:
    return {
        "seed": e.seed,
        "return": e.ret,
        "length": e.length,
        "end": e.end,
        "reason": e.reason,
        "success": e.success,
    }


def explain(
    program: Program | str,
    env: ResolvedEnv | str,
    *,
    seed: int = 0,
    episodes: int = 10,
    log: str | Path | None = None,
    unsafe_in_process: bool = False,
    last: int = DEFAULT_LAST,
    gifs: str | Path | None = None,
    seeds: Sequence[int] | None = None,
) -> Explanation:
    """Trace ``episodes`` episodes (seeds ``seed``, ``seed+1``, ...; or exactly ``seeds``) and tabulate
    lines, actions and rules; keep the last ``last`` decisions of each failed episode, and with
    ``gifs`` render the worst three of them into that folder."""
    from scriptrl.sandbox.trace_worker import instrument

    prog = program if isinstance(program, Program) else Program(source=program)
    renv = resolve_env(env) if isinstance(env, str) else env
    if episodes < 1 or last < 1:
        raise UserError(f"--episodes and --last must be at least 1 (got {episodes}, {last})")
    try:
        _, sites = instrument(prog.source, prog.name)
    except SyntaxError as e:
        raise UserError(f"{prog.name}: syntax error at line {e.lineno}: {e.msg}") from None
    lines = prog.source.splitlines()
    discrete = renv.description.action_kind == "discrete"
    seeds = [int(s) for s in seeds] if seeds else list(range(seed, seed + episodes))
    seed = seeds[0]
    log_file = _open_log(log)
    tally = _Tally(sites, lines, discrete, log_file)
    tails = LastDecisions(prog, renv, sites, last)

    def on_step(step: Step, env_obj: Any) -> None:
        tally.on_step(step, env_obj)
        tails.on_step(step, env_obj)

    try:
        ends, isolation = run_episodes(
            prog,
            renv,
            seeds,
            traced=True,
            unsafe=unsafe_in_process,
            worker_seed=seed,
            on_step=on_step,
            sites=len(sites),
        )
    finally:
        if log_file is not None:
            log_file.close()
    episode_rows = [_episode_row(e) for e in ends]
    crashes = tails.crashes(episode_rows)
    if gifs is not None:
        render_worst(prog, renv, crashes, gifs, unsafe_in_process=unsafe_in_process)
    return Explanation(
        env_id=renv.id,
        env_label=renv.label(),
        gymnasium_version=renv.gymnasium_version,
        program=prog.name,
        source=lines,
        seeds=seeds,
        episodes=episode_rows,
        decisions=tally.decisions,
        line_runs=dict(sorted(tally.line_runs.items())),
        line_decisions=dict(sorted(tally.line_decisions.items())),
        conditions=[
            {"line": ln, "expr": ex, "true": t, "false": f}
            for (ln, ex), (t, f) in zip(sites, tally.cond_counts, strict=True)
        ],
        rules=tally.rules([a.name for a in renv.description.actions]),
        isolation=isolation,
        crashes=crashes,
    )
