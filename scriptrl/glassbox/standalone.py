"""Does a champion file stand on its own: how long it is, and whether it drives its environment with
nothing but itself (issue 14: "every champion program is at most 60 lines and reads without the run
folder").

Why a real run and not a read of its imports: a file can look self-contained and still fail alone
(a helper module beside it, a data file it opens, a name only the run's process defined). So the file
is copied alone into an empty folder and run there by a fresh, isolated Python (``-I``: no
PYTHONPATH, no user site, not the caller's working directory). That process imports only the
file and whatever the file itself imports; it never imports scriptrl. The trusted side (this
process) builds the run's own environment, sends each observation as the sandbox encodes it and
checks each action the file returns with the evaluator's own action check, over a short real
episode. The child is not sandboxed: call this on files a search wrote (whose source passed
scriptrl's static checks) or files you trust.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Issue 14's limit on a champion file's lines.
MAX_LINES = 60
#: Steps the alone-run drives at most (over at most ``EPISODES`` episodes): enough to show the file
#: acts, few enough to stay fast on slow environments.
MAX_STEPS = 200
EPISODES = 2
#: Seconds the isolated process may take for all of it (start, imports, every step).
TIMEOUT = 120.0

# The isolated process: load the file alone, then answer one JSON line per observation. Actions are
# encoded as the sandbox worker encodes them, so the evaluator's own check can judge them.
_HARNESS = r"""
import inspect, json, os, runpy, sys
reply_to, sys.stdout = sys.stdout, sys.stderr  # what the file prints cannot garble the answers
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[1])))  # as `python FILE` would
try:
    import numpy as np
except ImportError:
    np = None
ns = runpy.run_path(sys.argv[1], run_name="policy")
codec = json.loads(sys.argv[2])
fn, cls = ns.get("policy"), ns.get("Policy")
if not callable(fn) and not isinstance(cls, type):
    sys.exit("no entry point: define policy(obs) or class Policy with reset(seed) and act(obs)")
fn = fn if callable(fn) else None
inst = None

def decode(o):
    if codec["kind"] == "box":
        return np.asarray(o, dtype=codec["dtype"]).reshape(codec["shape"])
    if codec["kind"] == "tuple":
        return tuple(o)
    return o

def encode(a):
    if type(a) in (int, float):
        return a
    if type(a) is bool or (np is not None and isinstance(a, np.bool_)):
        return {"t": "bool"}
    if np is not None and isinstance(a, np.integer):
        return int(a)
    if np is not None and isinstance(a, np.floating):
        return float(a)
    if np is not None and isinstance(a, (np.ndarray, list, tuple)):
        arr = np.asarray(a)
        return {"t": "arr", "k": arr.dtype.kind, "s": list(arr.shape), "v": arr.ravel().tolist()}
    return {"t": "other", "type": type(a).__name__}

for line in sys.stdin:
    msg = json.loads(line)
    if "reset" in msg:
        if fn is None:
            inst = cls()
            takes = len(inspect.signature(inst.reset).parameters) > 0
            inst.reset(msg["reset"]) if takes else inst.reset()
        reply = {}
    else:
        o = decode(msg["obs"])
        reply = encode(fn(o) if fn is not None else inst.act(o))
    reply_to.write(json.dumps(reply) + "\n")
    reply_to.flush()
"""


@dataclass(frozen=True)
class ChampionFile:
    """What the suite reports of a run's champion file."""

    path: str
    lines: int  # every line of the file as a person reads it, its comment header included
    within_60_lines: bool
    self_contained: bool
    steps: int  # steps the file drove alone (0 when it did not load)
    reason: str | None  # why it is not self-contained; None when it is

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def line_count(text: str) -> int:
    """Lines of a file's text (a final newline does not add one)."""
    return len(text.splitlines())


def runs_alone(path: str | Path, renv: Any, seeds: tuple[int, ...] = (0, 1)) -> tuple[bool, int, str | None]:
    """Run the file alone in a fresh isolated Python on a short real episode of ``renv`` (a
    ``ResolvedEnv``): whether every action it returned was valid, the steps driven, and why not."""
    from scriptrl.sandbox.actions import make_checker, observation_codec, plain_data

    env = renv.make()
    check = make_checker(env.action_space)
    codec = observation_codec(env.observation_space)
    steps = 0
    with tempfile.TemporaryDirectory(prefix="scriptrl-alone-") as tmp:
        folder = Path(tmp) / "alone"  # the file and nothing else; its error output lives beside it
        folder.mkdir()
        alone = folder / Path(path).name
        shutil.copyfile(path, alone)
        cmd = [sys.executable, "-I", "-c", _HARNESS, str(alone), json.dumps(codec)]
        errors = open(Path(tmp) / "stderr.txt", "w+", encoding="utf-8")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            cmd, cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        timer = threading.Timer(TIMEOUT, proc.kill)  # a file that hangs ends the run: no answer
        timer.start()
        try:
            for seed in seeds[:EPISODES]:
                obs, _ = env.reset(seed=seed)
                _ask(proc, {"reset": seed})
                done = False
                while not done and steps < MAX_STEPS:
                    act, reason = check(_ask(proc, {"obs": plain_data(obs)}))
                    if reason is not None:
                        return False, steps, f"step {steps}: {reason}"
                    obs, _, terminated, truncated, _ = env.step(act)
                    steps, done = steps + 1, terminated or truncated
            return True, steps, None
        except _Died:
            proc.kill()
            proc.wait()
            errors.seek(0)
            tail = [ln for ln in errors.read().splitlines() if ln.strip()]
            why = tail[-1] if tail else f"exited with {proc.returncode} (killed after {TIMEOUT:g} s?)"
            return False, steps, why[:300]
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
            errors.close()
            env.close()


class _Died(Exception):
    """The isolated process ended (or wrote something that is not an answer) before answering."""


def _ask(proc: subprocess.Popen, msg: dict) -> Any:
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        return json.loads(line)
    except (BrokenPipeError, OSError, json.JSONDecodeError) as e:
        raise _Died() from e


def check_champion_file(path: str | Path, renv: Any) -> ChampionFile:
    """Length and self-containedness of one champion file on ``renv``."""
    n = line_count(Path(path).read_text(encoding="utf-8"))
    ok, steps, reason = runs_alone(path, renv)
    return ChampionFile(str(path), n, n <= MAX_LINES, ok, steps, reason)


def check_run(run_dir: str | Path) -> ChampionFile | None:
    """The check of a run folder's ``best_policy.py`` on the run's own environment (its imports,
    make-time options); None for a run without one (a neural baseline)."""
    from scriptrl.glassbox.report.crashes import run_env
    from scriptrl.store import BEST_POLICY_NAME, RunStore

    path = Path(run_dir) / BEST_POLICY_NAME
    if not path.is_file():
        return None
    with RunStore.open(run_dir) as store:
        cfg = store.config
    return check_champion_file(path, run_env(cfg))
