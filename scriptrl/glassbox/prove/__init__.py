"""Proofs of stated properties of a policy program: PROVED, REFUTED with a confirmed
counterexample, or UNKNOWN.

Sampling (``scriptrl verify``'s property checks) can miss a fault planted in a corner
of the observation space; a proof cannot. The program's AST is translated into an SMT
formula (``scriptrl.glassbox.prove.translate``; the program is parsed, never run here), z3
decides the property over a box of observations, and a counterexample is replayed in
the sandbox before it is believed. What stops the translation (a ``while`` loop, a
string, a stateful Policy) is named with its line, and the answer is UNKNOWN.

Arithmetic is over the reals: float rounding is not modelled. A REFUTED answer is
always confirmed on the real float32 program; a PROVED answer holds for the real-number
reading of the program (a property that hinges on rounding at a boundary is out of
its reach, and the report says so).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scriptrl.errors import UserError
from scriptrl.glassbox.prove.properties import Bound, Property, PropertySet, check_expression, observation_box
from scriptrl.program import Program

#: Limits: nodes in the formula, seconds for the whole solve, seconds for one solver check.
MAX_NODES = 200_000
MAX_SECONDS = 60.0
PER_CHECK = 20.0
EXIT_PROVED, EXIT_REFUTED, EXIT_UNKNOWN = 0, 1, 3


@dataclass
class ProofResult:
    name: str
    expr: str
    verdict: str  # PROVED | REFUTED | UNKNOWN
    detail: str
    box: list[dict]
    counterexample: list | None = None
    action: Any = None
    seed: int | None = None
    replays: list[dict] = field(default_factory=list)


@dataclass
class ProofReport:
    program: str
    env_label: str
    results: list[ProofResult]
    nodes: int
    seconds: float
    note: str = (
        "arithmetic over the reals (float rounding not modelled); every counterexample was replayed in the"
        " sandbox on the observation as the environment would send it"
    )

    @property
    def exit_code(self) -> int:
        verdicts = {r.verdict for r in self.results}
        if "REFUTED" in verdicts:
            return EXIT_REFUTED
        return EXIT_UNKNOWN if "UNKNOWN" in verdicts else EXIT_PROVED

    def to_dict(self) -> dict:
        d = asdict(self)
        d["exit_code"] = self.exit_code
        return d


def require_z3() -> None:
    try:
        import z3  # noqa: F401
    except ImportError:
        raise UserError(
            'proofs need the z3 solver: pip install -e ".[prove]" (or pip install z3-solver)'
        ) from None


def prove(
    program: Program,
    renv: Any,
    properties: PropertySet | list[Property],
    *,
    unsafe: bool = False,
    max_nodes: int = MAX_NODES,
    max_seconds: float = MAX_SECONDS,
    per_check: float = PER_CHECK,
) -> ProofReport:
    """Prove each property over its observation box; confirm every counterexample in the sandbox."""
    from gymnasium import spaces

    require_z3()
    started = time.monotonic()
    pset = properties if isinstance(properties, PropertySet) else PropertySet(list(properties))
    if not pset.properties:
        raise UserError("nothing to prove: give --prove EXPR or --properties FILE")
    for p in pset.properties:
        check_expression(p.expr, "--prove")
    probe = renv.make()
    space = probe.observation_space
    probe.close()
    boxes: list[list[Bound]] = [
        observation_box(space, renv.description, pset.ranges + p.ranges) for p in pset.properties
    ]
    kind = "discrete" if isinstance(space, spaces.Discrete) else "box"
    job = {
        "source": program.source,
        "kind": kind,
        "integer": boxes[0][0].integer,
        "max_nodes": max_nodes,
        "seconds": max_seconds,
        "per_check": min(per_check, max_seconds),
        "properties": [{"name": p.name, "expr": p.expr} for p in pset.properties],
        "boxes": [[b.to_dict() for b in box] for box in boxes],
    }
    answer = run_solver(job, max_seconds)
    results = []
    for i, p in enumerate(pset.properties):
        box = [b.to_dict() for b in boxes[i]]
        if answer.get("program"):
            results.append(
                ProofResult(p.name, p.expr, "UNKNOWN", answer["program"].removeprefix("UNKNOWN: "), box)
            )
            continue
        r = answer["results"][i]
        results.append(_confirm(program, renv, p, r, box, unsafe))
    return ProofReport(
        program.name, renv.label(), results, int(answer.get("nodes") or 0), time.monotonic() - started
    )


def _confirm(program: Program, renv: Any, p: Property, r: dict, box: list[dict], unsafe: bool) -> ProofResult:
    from scriptrl.glassbox.prove.replay import replay

    res = ProofResult(p.name, p.expr, r["verdict"], r["detail"], box)
    if r["verdict"] != "REFUTED":
        return res
    replays = replay(program, renv, p.expr, r["candidates"], unsafe=unsafe)
    res.replays = [asdict(x) for x in replays]
    hit = next((x for x in replays if x.violates), None)
    if hit is None:
        res.verdict = "UNKNOWN"
        why = "; ".join(
            x.reason or f"the sandbox chose {x.action!r}, which satisfies it" for x in replays[:3]
        )
        res.detail = (
            f"the solver's counterexample(s) were not confirmed by the sandbox ({why}); float rounding at a"
            " boundary, or a construct the translation reads differently"
        )
        return res
    res.counterexample, res.action, res.seed = hit.observation, hit.action, hit.seed
    res.detail = (
        f"at obs={hit.observation} the sandboxed program chose action {hit.action!r}, which violates it"
    )
    return res


def run_solver(job: dict, max_seconds: float) -> dict:
    """``python -m scriptrl.glassbox.prove.solve`` with a hard deadline: a stuck solver becomes UNKNOWN,
    never a hang."""
    env = {
        k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    }
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "scriptrl.glassbox.prove.solve"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=max_seconds + 10.0,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {
            "program": f"UNKNOWN: the solver did not finish within {max_seconds:g} s (--prove-seconds)",
            "nodes": 0,
        }
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return {"program": f"UNKNOWN: the solver process failed ({tail})", "nodes": 0}
    return json.loads(lines[-1])


def print_proof_report(report: ProofReport, console: Any = None) -> None:
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    style = {"PROVED": "bold green", "REFUTED": "bold red", "UNKNOWN": "bold yellow"}
    console.print(
        Text(
            f"Proofs for {report.program} on {report.env_label} ({report.nodes:,} formula nodes, "
            f"{report.seconds:.1f} s)"
        )
    )
    for r in report.results:
        console.print(Text.assemble((f"{r.verdict:8}", style[r.verdict]), f" {r.name}: {r.detail}"))
        if r.expr != r.name:
            console.print(Text(f"         property: {r.expr}", style="dim"))
        if r.verdict == "REFUTED":
            console.print(
                Text(
                    f"counterexample ({r.name}): "
                    + json.dumps({"observation": r.counterexample, "action": r.action, "seed": r.seed})
                )
            )
    if report.results:
        box = report.results[0].box
        console.print(
            Text(
                "box: "
                + ", ".join(
                    f"obs[{b['component']}] in [{b['low']:g}, {b['high']:g}] ({b['from']})" for b in box
                ),
                style="dim",
            )
        )
    console.print(Text(report.note, style="dim"))
