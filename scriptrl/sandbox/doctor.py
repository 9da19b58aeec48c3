"""`scriptrl doctor`: which isolation layers this machine actually gives a worker."""

from __future__ import annotations

import json
import sys

from scriptrl.sandbox.client import REQUIRED_LAYERS, SandboxWorker, WorkerFailure, isolation_ok

_PROBE = "def policy(obs):\n    return 0\n"


def probe_isolation() -> dict[str, str]:
    """Start a real worker, lock it down, and return its own report of the layers in force."""
    with SandboxWorker() as worker:
        worker.start()
        return worker.load(_PROBE, "probe.py", {"kind": "int"}, 0, ["math"])


def run_doctor(json_output: bool = False) -> int:
    try:
        report = probe_isolation()
    except WorkerFailure as e:
        sys.stderr.write(f"scriptrl: the sandbox worker could not start: {e.reason}\n")
        return 1
    ok, missing = isolation_ok(report)
    if json_output:
        sys.stdout.write(json.dumps({"isolation": report, "ok": ok, "required": list(REQUIRED_LAYERS)}) + "\n")
    else:
        width = max(len(k) for k in report)
        for layer, state in report.items():
            mark = "ok " if state.startswith("on") else "-- "
            sys.stdout.write(f"{mark} {layer.ljust(width)}  {state}\n")
        verdict = "generated code may run" if ok else "generated code is REFUSED: missing " + ", ".join(missing)
        sys.stdout.write(f"\nrequired: {', '.join(REQUIRED_LAYERS)} -> {verdict}\n")
    return 0 if ok else 1
