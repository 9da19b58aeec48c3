"""`scriptrl doctor`: which isolation layers this machine actually gives a worker, and how workers start."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from scriptrl.sandbox import client
from scriptrl.sandbox.client import (
    REQUIRED_LAYERS,
    ProgramLoadError,
    WorkerFailure,
    isolation_ok,
    open_worker,
)

_PROBE = "def policy(obs):\n    return 0\n"
_METHODS = {
    "fork-server": (
        "each program's worker is a fresh fork of a pre-imported zygote that never ran program code"
    ),
    "spawn": "each program's worker is a fresh interpreter",
}


@dataclass(frozen=True)
class Probe:
    """What a real worker, started the way evaluations start theirs, reported about itself."""

    isolation: dict[str, str]
    start_method: str  # "fork-server" or "spawn"
    fallback: str | None  # why a fork was asked for and a spawn happened


def probe_isolation(fork_server: bool = True) -> Probe:
    """Start a real worker, lock it down, and return its own report of the layers in force."""
    worker = open_worker(
        _PROBE, "probe.py", {"kind": "int"}, 0, allowed_imports=["math"], fork_server=fork_server
    )
    try:
        return Probe(
            dict(worker.isolation), worker.start_method, client.fallback_reason if fork_server else None
        )
    finally:
        worker.close()


def run_doctor(json_output: bool = False, fork_server: bool = True) -> int:
    try:
        probe = probe_isolation(fork_server)
    except (WorkerFailure, ProgramLoadError) as e:
        sys.stderr.write(f"scriptrl: the sandbox worker could not start: {getattr(e, 'reason', e)}\n")
        return 1
    report = probe.isolation
    ok, missing = isolation_ok(report)
    if json_output:
        out = {
            "isolation": report,
            "ok": ok,
            "required": list(REQUIRED_LAYERS),
            "start_method": probe.start_method,
            "start_fallback": probe.fallback,
        }
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        width = max(len(k) for k in report)
        for layer, state in report.items():
            mark = "ok " if state.startswith("on") else "-- "
            sys.stdout.write(f"{mark} {layer.ljust(width)}  {state}\n")
        method = f"{probe.start_method}: {_METHODS.get(probe.start_method, '')}"
        if probe.fallback:
            method += f" (the fork server is unavailable: {probe.fallback})"
        sys.stdout.write(f"\nstart method: {method}\n")
        verdict = (
            "generated code may run" if ok else "generated code is REFUSED: missing " + ", ".join(missing)
        )
        sys.stdout.write(f"required: {', '.join(REQUIRED_LAYERS)} -> {verdict}\n")
    return 0 if ok else 1
