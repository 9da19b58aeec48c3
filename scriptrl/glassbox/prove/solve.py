"""The solving step: translate, check the obligations, then each property, inside a bounded child process.

Why a child process: z3's own timeout is a request, not a guarantee (nonlinear problems
and huge formulas can overrun it), and a hostile program could make even the
translation grind. The parent (``scriptrl.glassbox.prove.prove``) runs this module as
``python -m scriptrl.glassbox.prove.solve`` with a memory limit and kills it at its deadline, so
the worst case is a clear UNKNOWN. Nothing here runs the program: it is parsed only.

Protocol: one JSON job on stdin, one JSON answer on stdout.
"""

from __future__ import annotations

import ast
import json
import sys
import time
from typing import Any

import z3

from scriptrl.glassbox.prove.program import parse, translate_program
from scriptrl.glassbox.prove.translate import Translator
from scriptrl.glassbox.prove.values import Unsupported, Vec, b_or, is_sym, model_number, truth

#: Counterexamples on this grid are exact in float32 (for |x| < 2^15), so the sandbox sees the same number.
GRID = 256


def observation_vars(kind: str, size: int, integer: bool) -> tuple[Any, list]:
    if kind == "discrete":
        v = z3.Int("obs")
        return v, [v]
    make = z3.Int if integer else z3.Real
    vs = [make(f"obs[{i}]") for i in range(size)]
    return Vec(vs, "array"), vs


def box_constraints(variables: list, box: list[dict]) -> list:
    out = []
    for v, b in zip(variables, box, strict=True):
        out += [
            v >= z3.RealVal(repr(b["low"])) if not v.is_int() else v >= int(b["low"]),
            v <= z3.RealVal(repr(b["high"])) if not v.is_int() else v <= int(b["high"]),
        ]
    return out


def property_formula(expr: str, obs: Any, action: Any, tr: Translator) -> Any:
    from scriptrl.glassbox.prove.values import Module

    env = {
        "obs": obs,
        "action": action,
        "np": Module("numpy"),
        "numpy": Module("numpy"),
        "math": Module("math"),
    }
    tree = parse(expr, "the property")
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        raise Unsupported("the property must be one expression")
    tr.pc = True
    return truth(tr.expr(tree.body[0].value, env))


class _Clock:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def ms(self, cap: float) -> int:
        return max(1, int(1000 * min(cap, self.end - time.monotonic())))

    def left(self) -> float:
        return self.end - time.monotonic()


def _solver(clock: _Clock, per_check: float, facts: list) -> z3.Solver:
    s = z3.Solver()
    s.set("timeout", clock.ms(per_check))
    s.add(*facts)
    return s


def _point(m: z3.ModelRef, variables: list, seed: Any) -> dict:
    values = [model_number(m.eval(v, model_completion=True)) for v in variables]
    out: dict[str, Any] = {"obs": values}
    if seed is not None:
        out["seed"] = int(model_number(m.eval(seed, model_completion=True)))
    return out


def counterexamples(
    s: z3.Solver,
    variables: list,
    box: list[dict],
    seed: Any,
    clock: _Clock,
    per_check: float,
    how_many: int = 3,
) -> list[dict]:
    """The first model, then (preferred) one on a float32-exact grid, then others away from those."""
    found = [_point(s.model(), variables, seed)]
    s.push()
    grid = []
    for v in variables:
        if not v.is_int():
            k = z3.Int(f"{v}!grid")
            grid.append(v * GRID == z3.ToReal(k))
    s.add(*grid)
    s.set("timeout", clock.ms(per_check / 2))
    if grid and s.check() == z3.sat:
        found.insert(0, _point(s.model(), variables, seed))
    s.pop()
    while len(found) < how_many and clock.left() > 0:
        away = []
        for p in found:
            far = False
            for v, x, b in zip(variables, p["obs"], box, strict=True):
                delta = max(1e-3 * (b["high"] - b["low"]), 1e-6)
                far = b_or(far, z3.Or(v < z3.RealVal(repr(x - delta)), v > z3.RealVal(repr(x + delta))))
            away.append(far)
        s.add(*[a for a in away if is_sym(a)])
        s.set("timeout", clock.ms(per_check / 2))
        if s.check() != z3.sat:
            break
        found.append(_point(s.model(), variables, seed))
    return found


def _obligation_problem(
    model: Any, facts: list, variables: list, clock: _Clock, per_check: float
) -> str | None:
    """The first obligation the solver cannot rule out, as a sentence; None when all are impossible."""
    if not model.obligations:
        return None
    s = _solver(clock, per_check, facts)
    s.add(z3.Or(*[o.cond for o in model.obligations]))
    r = s.check()
    if r == z3.unsat:
        return None
    for o in model.obligations:
        s = _solver(clock, per_check, facts + [o.cond])
        r1 = s.check()
        if r1 == z3.sat:
            where = [round(x, 6) for x in _point(s.model(), variables, None)["obs"]]
            return f"line {o.line}: {o.what} (e.g. at obs={where}), so no proof can hold there"
        if r1 == z3.unknown:
            return f"line {o.line}: the solver could not rule out {o.what} ({s.reason_unknown()})"
    return f"the solver could not rule out the program's side conditions ({s.reason_unknown()})"


def run_job(job: dict) -> dict:
    """Every property's verdict (PROVED, REFUTED with candidate counterexamples, UNKNOWN) for one program."""
    clock = _Clock(float(job["seconds"]))
    per_check = float(job["per_check"])
    z3.set_param("memory_max_size", int(job.get("memory_mb", 1024)))
    obs, variables = observation_vars(job["kind"], len(job["boxes"][0]), bool(job["integer"]))
    tr = Translator(max_nodes=int(job["max_nodes"]), deadline=time.monotonic() + 0.5 * float(job["seconds"]))
    seed = z3.Int("seed")
    try:
        model = translate_program(job["source"], obs, tr, seed)
    except Unsupported as e:
        return {"program": f"UNKNOWN: {e}", "results": [], "nodes": tr.nodes}
    except RecursionError:
        return {
            "program": "UNKNOWN: the program nests too deeply to translate",
            "results": [],
            "nodes": tr.nodes,
        }
    seed_used = _mentions(model)
    results = []
    for prop, box in zip(job["properties"], job["boxes"], strict=True):
        results.append(
            _one_property(prop, box, model, obs, variables, tr, clock, per_check, seed if seed_used else None)
        )
    return {"program": None, "results": results, "nodes": tr.nodes}


def _mentions(model: Any) -> bool:
    """Whether the action depends on reset's seed (then a counterexample names a seed too)."""

    def walk(v: Any) -> bool:
        if isinstance(v, Vec):
            return any(walk(x) for x in v.items)
        return is_sym(v) and "seed" in {str(d) for d in _consts(v)}

    return walk(model.action)


def _consts(e: Any, limit: int = 20_000) -> set:
    seen: set[int] = set()
    stack, out = [e], set()
    while stack and len(seen) < limit:
        x = stack.pop()
        if x.get_id() in seen:
            continue
        seen.add(x.get_id())
        if z3.is_const(x) and not z3.is_int_value(x) and not z3.is_rational_value(x):
            out.add(x)
        stack.extend(x.children())
    return out


class _Only:
    """Obligations alone, in the shape ``_obligation_problem`` reads."""

    def __init__(self, obligations: list) -> None:
        self.obligations = obligations


def _one_property(
    prop: dict,
    box: list[dict],
    model: Any,
    obs: Any,
    variables: list,
    tr: Translator,
    clock: _Clock,
    per_check: float,
    seed: Any,
) -> dict:
    started = time.monotonic()
    out: dict[str, Any] = {"name": prop["name"], "verdict": "UNKNOWN", "detail": "", "candidates": []}
    facts = box_constraints(variables, box) + list(model.axioms)
    if seed is not None:
        facts.append(seed >= 0)
    before = len(tr.obligations)  # the property's own side conditions are checked for this property only
    try:
        tr.pc = True
        claim = property_formula(prop["expr"], obs, model.action, tr)
    except Unsupported as e:
        out["detail"] = f"the property: {e}"
        return out
    finally:
        own = tr.obligations[before:]
        del tr.obligations[before:]
    if clock.left() <= 0:
        out["detail"] = "the solver's time limit was reached before this property"
        return out
    problem = _obligation_problem(model, facts, variables, clock, per_check)
    problem = problem or _obligation_problem(_Only(own), facts, variables, clock, per_check)
    if problem:
        out["detail"] = problem
        return out
    if claim is True or claim is False:
        out["verdict"], out["detail"] = (
            ("PROVED", "holds for every observation (decided without the solver)")
            if claim
            else ("REFUTED", "fails for every observation")
        )
        if claim is False:
            out["candidates"] = [{"obs": [b["low"] for b in box]}]
        return out
    s = _solver(clock, per_check, facts)
    s.add(z3.Not(claim))
    r = s.check()
    if r == z3.unsat:
        out["verdict"], out["detail"] = (
            "PROVED",
            f"holds for every observation in the box (z3, {time.monotonic() - started:.2f} s)",
        )
    elif r == z3.sat:
        out["verdict"] = "REFUTED"
        out["candidates"] = counterexamples(s, variables, box, seed, clock, per_check)
        out["detail"] = "the solver found an observation where it fails"
    else:
        out["detail"] = f"the solver gave up: {s.reason_unknown()} (limit {per_check:g} s per check)"
    return out


def differ(a: Any, b: Any) -> Any:
    """Where two actions differ (componentwise for arrays), as a Python bool or a z3 Bool."""
    from scriptrl.glassbox.prove.operators import compare_one

    if isinstance(a, Vec) or isinstance(b, Vec):
        if not (isinstance(a, Vec) and isinstance(b, Vec)) or len(a.items) != len(b.items):
            return True
        out: Any = False
        for x, y in zip(a.items, b.items, strict=True):
            out = b_or(out, differ(x, y))
        return out
    return compare_one(Translator(), ast.NotEq(), a, b)


def run_diff(job: dict) -> dict:
    """Is there an observation in the box where programs A and B choose different actions?"""
    clock = _Clock(float(job["seconds"]))
    per_check = float(job["per_check"])
    box = job["boxes"][0]
    obs, variables = observation_vars(job["kind"], len(box), bool(job["integer"]))
    models = []
    for tag, source in (("a", job["source"]), ("b", job["other"])):
        tr = Translator(
            max_nodes=int(job["max_nodes"]), deadline=time.monotonic() + 0.25 * float(job["seconds"]), tag=tag
        )
        try:
            models.append(translate_program(source, obs, tr, z3.Int("seed")))
        except Unsupported as e:
            return {"verdict": "UNKNOWN", "detail": f"program {tag.upper()}: {e}"}
        except RecursionError:
            return {"verdict": "UNKNOWN", "detail": f"program {tag.upper()} nests too deeply to translate"}
    facts = box_constraints(variables, box) + models[0].axioms + models[1].axioms + [z3.Int("seed") >= 0]
    for tag, model in zip("AB", models, strict=True):
        problem = _obligation_problem(model, facts, variables, clock, per_check)
        if problem:
            return {"verdict": "UNKNOWN", "detail": f"program {tag}: {problem}"}
    d = differ(models[0].action, models[1].action)
    if d is False:
        return {
            "verdict": "IDENTICAL",
            "detail": "the same action for every observation (decided without the solver)",
        }
    s = _solver(clock, per_check, facts)
    if d is not True:
        s.add(d)
    r = s.check()
    if r == z3.unsat:
        return {"verdict": "IDENTICAL", "detail": "the same action for every observation in the box (z3)"}
    if r == z3.sat:
        return {
            "verdict": "DIFFER",
            "detail": "the solver found observations where they differ",
            "candidates": counterexamples(s, variables, box, None, clock, per_check),
        }
    return {"verdict": "UNKNOWN", "detail": f"the solver gave up: {s.reason_unknown()}"}


def main() -> int:
    import resource

    job = json.loads(sys.stdin.read())
    limit = int(job.get("memory_mb", 1024)) * 2 * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):
        pass
    sys.setrecursionlimit(20_000)
    try:
        answer = run_diff(job) if job.get("other") is not None else run_job(job)
    except MemoryError:
        answer = {"program": "UNKNOWN: the translation ran out of memory", "results": [], "nodes": 0}
    except z3.Z3Exception as e:
        answer = {"program": f"UNKNOWN: the solver failed: {e}", "results": [], "nodes": 0}
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
