"""``scriptrl diff A.py B.py --env ID``: how two versions of a policy behave differently.

What a reviewer needs before approving a change: *where* the two versions choose
different actions (proved with the solver over the observation box when both programs
translate: a witness observation, or a proof that they are identical; sampled over
the box either way), *how often* that matters (A's holdout episodes are run and B is
asked at every state A visited), and *what it costs or gains* (both scored on the same
holdout seeds, the difference paired per seed with its 95 % interval).

Both programs run only in the sandbox; the solver only parses them. The sandbox-facing
calls are the three helpers at the bottom (the asker ``verify`` uses, ``run_episodes``
and ``evaluate``), so a change to the sandbox client is an edit there.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from scriptrl.envs import ResolvedEnv
from scriptrl.errors import UserError
from scriptrl.program import Program
from scriptrl.seeds import SeedSplits

MAX_EXAMPLES = 5


@dataclass
class DiffReport:
    a: str
    b: str
    env_label: str
    proof: dict  # verdict IDENTICAL | DIFFER | UNKNOWN | SKIPPED, detail, witness
    box: list[dict]
    sampled: dict  # observations drawn uniformly in the box, and where the versions disagree
    holdout: dict  # states A visited on holdout, and where B would act differently
    score: dict  # both means, B - A paired per seed with its 95 % interval
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def behaviour_diff(
    a: Program,
    b: Program,
    renv: ResolvedEnv,
    *,
    episodes: int = 20,
    samples: int = 2000,
    ranges: tuple = (),
    prove: bool = True,
    max_seconds: float = 60.0,
    unsafe: bool = False,
    seed: int = 0,
) -> DiffReport:
    """Where, how often and at what score cost two versions of a policy differ."""
    from scriptrl.glassbox.prove.properties import observation_box

    splits = SeedSplits()
    if not 1 <= episodes <= splits.size("holdout"):
        raise UserError(f"--episodes must be 1..{splits.size('holdout')} (the holdout split)")
    probe = renv.make()
    space = probe.observation_space
    probe.close()
    notes: list[str] = []
    try:
        box = [x.to_dict() for x in observation_box(space, renv.description, tuple(ranges))]
    except UserError as e:
        box, notes = [], [f"no observation box: {e}"]
    proof = (
        _prove_difference(a, b, renv, space, box, max_seconds, unsafe)
        if prove and box
        else {
            "verdict": "SKIPPED",
            "detail": "no proof asked for (--no-prove)" if box else "no observation box",
        }
    )
    observations = _box_samples(space, box, samples, seed)
    acts_a, acts_b = ask_both(a, b, renv, observations, unsafe)
    sampled = _disagreements(observations, acts_a, acts_b)
    seeds = splits.seeds("holdout", episodes)
    holdout = _holdout_disagreement(a, b, renv, seeds, unsafe)
    score = _paired_scores(a, b, renv, seeds, unsafe)
    if b.entry_kind == "class" or a.entry_kind == "class":
        notes.append(
            "a class Policy is asked with a fresh instance per state, "
            "so its memory of earlier steps is not replayed"
        )
    return DiffReport(a.name, b.name, renv.label(), proof, box, sampled, holdout, score, notes)


def _prove_difference(
    a: Program, b: Program, renv: ResolvedEnv, space: Any, box: list[dict], max_seconds: float, unsafe: bool
) -> dict:
    from gymnasium import spaces

    try:
        from scriptrl.glassbox.prove import MAX_NODES, PER_CHECK, require_z3, run_solver

        require_z3()
    except UserError as e:
        return {"verdict": "UNKNOWN", "detail": str(e)}
    job = {
        "source": a.source,
        "other": b.source,
        "kind": "discrete" if isinstance(space, spaces.Discrete) else "box",
        "integer": bool(box and np.dtype(space.dtype).kind in "iu"),
        "max_nodes": MAX_NODES,
        "seconds": max_seconds,
        "per_check": min(PER_CHECK, max_seconds),
        "boxes": [box],
    }
    answer = run_solver(job, max_seconds)
    if "verdict" not in answer:
        return {"verdict": "UNKNOWN", "detail": str(answer.get("program", "the solver gave no answer"))}
    out = {"verdict": answer["verdict"], "detail": answer["detail"]}
    if answer["verdict"] == "DIFFER":
        cands = [_observation(space, c["obs"]) for c in answer.get("candidates", [])]
        acts_a, acts_b = ask_both(a, b, renv, cands, unsafe)
        for o, x, y in zip(cands, acts_a, acts_b, strict=True):
            if not _same(x, y):
                out["witness"] = {"observation": _plain(o), "action_a": x, "action_b": y}
                out["detail"] = (
                    f"at obs={_plain(o)} A chooses {x!r} and B chooses {y!r} (confirmed in the sandbox)"
                )
                return out
        out["verdict"] = "UNKNOWN"
        out["detail"] = (
            "the solver's witnesses were not confirmed in the sandbox (float rounding at a boundary?)"
        )
    return out


def _box_samples(space: Any, box: list[dict], n: int, seed: int) -> list:
    rng = np.random.default_rng([seed, 4099])
    if not box:
        space.seed(seed)
        return [space.sample() for _ in range(n)]
    lo = np.array([b["low"] for b in box])
    hi = np.array([b["high"] for b in box])
    return [_observation(space, list(v)) for v in rng.uniform(lo, hi, size=(n, lo.size))]


def _observation(space: Any, values: list) -> Any:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return int(round(values[0]))
    arr = np.asarray(values, dtype=np.float64)
    return (np.round(arr) if np.dtype(space.dtype).kind in "iu" else arr).astype(space.dtype)


def _plain(o: Any) -> Any:
    from scriptrl.glassbox.verify import _show

    return _show(o)


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        return bool(np.allclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float), rtol=0, atol=1e-9))
    return json.dumps(x, sort_keys=True) == json.dumps(y, sort_keys=True)


def _disagreements(observations: list, acts_a: list, acts_b: list) -> dict:
    differ = [i for i, (x, y) in enumerate(zip(acts_a, acts_b, strict=True)) if not _same(x, y)]
    return {
        "observations": len(observations),
        "disagree": len(differ),
        "rate": len(differ) / len(observations) if observations else 0.0,
        "examples": [
            {"observation": _plain(observations[i]), "action_a": acts_a[i], "action_b": acts_b[i]}
            for i in differ[:MAX_EXAMPLES]
        ],
    }


def _holdout_disagreement(a: Program, b: Program, renv: ResolvedEnv, seeds: list[int], unsafe: bool) -> dict:
    states, actions = visited_states(a, renv, seeds, unsafe)
    if not states:
        return {"states": 0, "disagree": 0, "rate": 0.0, "examples": [], "seeds": [seeds[0], seeds[-1]]}
    space = _space(renv)
    obs = [_observation(space, s if isinstance(s, list) else [s]) for s in states]
    acts_b = ask(b, renv, obs, unsafe)
    out = _disagreements(obs, actions, acts_b)
    out["states"] = out.pop("observations")
    out["seeds"] = [seeds[0], seeds[-1]]
    return out


def _paired_scores(a: Program, b: Program, renv: ResolvedEnv, seeds: list[int], unsafe: bool) -> dict:
    from scriptrl.evaluate import confidence_interval

    ra, rb = score(a, renv, seeds, unsafe), score(b, renv, seeds, unsafe)
    diffs = [y - x for x, y in zip(ra.returns, rb.returns, strict=True)]
    lo, hi = confidence_interval(diffs)
    return {
        "a_mean": ra.mean,
        "a_ci95": list(ra.ci95),
        "b_mean": rb.mean,
        "b_ci95": list(rb.ci95),
        "b_minus_a": statistics.fmean(diffs),
        "b_minus_a_ci95": [lo, hi],
        "seeds": [seeds[0], seeds[-1]],
        "failures": {"a": len(ra.failures), "b": len(rb.failures)},
    }


def _space(renv: ResolvedEnv) -> Any:
    probe = renv.make()
    space = probe.observation_space
    probe.close()
    return space


# --------------------------------------------------------------------------- the sandbox-facing calls


def ask(program: Program, renv: ResolvedEnv, observations: list, unsafe: bool, batch: int = 1000) -> list:
    """The sandboxed program's action (as env.step gets it, plain data) for each observation, or an
    error string."""
    from scriptrl.glassbox.verify.asker import _Asker
    from scriptrl.sandbox.actions import make_checker, observation_codec, plain_data
    from scriptrl.sandbox.client import WorkerFailure

    probe = renv.make()
    codec, check = observation_codec(probe.observation_space), make_checker(probe.action_space)
    probe.close()
    asker = _Asker(program, codec, 0, unsafe, 0.05)
    out: list = []
    try:
        for i in range(0, len(observations), batch):
            part = observations[i : i + batch]
            try:
                raw, _ = asker.ask(part)
            except WorkerFailure as e:
                out += [f"error: the worker failed ({e.reason})"] * len(part)
                continue
            for a in raw:
                act, reason = check(a)
                out.append(plain_data(act) if reason is None else f"error: {reason}")
    finally:
        asker.close()
    return out


def ask_both(
    a: Program, b: Program, renv: ResolvedEnv, observations: list, unsafe: bool
) -> tuple[list, list]:
    return ask(a, renv, observations, unsafe), ask(b, renv, observations, unsafe)


def visited_states(program: Program, renv: ResolvedEnv, seeds: list[int], unsafe: bool) -> tuple[list, list]:
    """Every state the program's own episodes visit, with the action it took there."""
    from scriptrl.glassbox.trace import run_episodes

    states: list = []
    actions: list = []

    def keep(step: Any, env: Any) -> None:
        if step.action is not None:
            states.append(step.obs)
            actions.append(step.action)

    run_episodes(program, renv, seeds, unsafe=unsafe, on_step=keep)
    return states, actions


def score(program: Program, renv: ResolvedEnv, seeds: list[int], unsafe: bool) -> Any:
    from scriptrl.evaluate import EvalConfig, evaluate

    return evaluate(program, renv, seeds, EvalConfig(unsafe_in_process=unsafe), split="holdout")


def print_diff(report: DiffReport, console: Any = None) -> None:
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    p, s, h, sc = report.proof, report.sampled, report.holdout, report.score
    console.print(
        Text(f"Behavioural diff: A = {report.a}, B = {report.b} on {report.env_label}", style="bold")
    )
    style = {"IDENTICAL": "green", "DIFFER": "yellow", "UNKNOWN": "dim", "SKIPPED": "dim"}.get(
        p["verdict"], ""
    )
    console.print(Text.assemble(("proof     ", ""), (p["verdict"], style), f": {p['detail']}"))
    console.print(
        Text(
            f"sampled   {s['disagree']:,} of {s['observations']:,} observations drawn in the box differ "
            f"({100 * s['rate']:.2f}%)"
        )
    )
    console.print(
        Text(
            f"holdout   B would act differently at {h['disagree']:,} of {h['states']:,} states A visited "
            f"({100 * h['rate']:.2f}%), seeds {h['seeds'][0]}-{h['seeds'][1]}"
        )
    )
    console.print(
        Text(
            f"score     A {sc['a_mean']:.2f}, B {sc['b_mean']:.2f}; B - A = {sc['b_minus_a']:+.2f} "
            f"(95% CI {sc['b_minus_a_ci95'][0]:+.2f} to {sc['b_minus_a_ci95'][1]:+.2f}, "
            "paired over the same seeds)"
        )
    )
    for ex in (h["examples"] or s["examples"])[:3]:
        console.print(
            Text(f"  e.g. obs={ex['observation']}: A {ex['action_a']!r}, B {ex['action_b']!r}", style="dim")
        )
    if report.box:
        console.print(
            Text(
                "box: "
                + ", ".join(
                    f"obs[{b['component']}] in [{b['low']:g}, {b['high']:g}] ({b['from']})"
                    for b in report.box
                ),
                style="dim",
            )
        )
    for n in report.notes:
        console.print(Text(n, style="dim"))
