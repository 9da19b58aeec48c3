"""Hostile programs through the real evaluation path: every attack must be contained.

Each file of the shared corpus (``../shared/hostile/h*.py``, see its README for what
"contained" means) and each extra attack in ``tests/hostile_extra/x*.py`` runs through
``evaluate()`` in two modes:

* ``static``  - the defaults: static AST filter and runtime import allow-list on;
* ``os-only`` - both in-process filters off, so the operating-system layers of the
  worker (namespaces, chroot, uid drop, Landlock, rlimits, seccomp) alone must hold.

Most extra attacks reach ``os``/``ctypes`` through ``statistics.sys`` (a public attribute),
which neither in-process filter notices, so they exercise the OS layers in both modes.

A module-scoped harness plants victim files, opens TCP/UDP/abstract-unix listeners, puts a
fake OPENAI_API_KEY in the environment and records every signal that reaches this process;
after each evaluation it checks that nothing leaked, changed or connected. Weaknesses found
and not yet fixed are listed in KNOWN_WEAKNESSES: their tests xfail on exactly the check
they break and fail loudly ("fixed? remove it") once the check passes. Run with ``-s`` to
see the table of attack -> outcome printed at the end.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import site
import socket
import statistics
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scriptrl.envs import resolve_env
from scriptrl.evaluate import EvalConfig, EvalResult, evaluate
from scriptrl.program import Program

from checkout import HOSTILE_EXTRA as EXTRA
from checkout import ROOT
from checkout import SHARED_HOSTILE as CORPUS

pytestmark = pytest.mark.slow

VICTIM = Path("/tmp/scriptrl-hostile")
SANDBOX_ROOT = Path("/tmp/scriptrl-sandbox-root")
LOCK = Path("/tmp/scriptrl-hostile.lock")  # one hostile run at a time: they share VICTIM and the ports
TCP_PORT, UDP_PORT, ABSTRACT = 47123, 47124, "\0sandbox-test-abstract"
SEEDS = list(range(5))
WALL_LIMIT = 15.0  # seconds per evaluation, restarts included
REASON_LIMIT = 2000  # characters: a failure reason is a sentence, not a data channel
REQUIRED_LAYERS = ("process", "environment", "rlimits")
ENV_MARK = re.compile(r"^# scriptrl-hostile-env: (\S+)", re.M)

_BASE = {"call_timeout": 1.0, "episode_timeout": 10.0}
MODES = {
    "static": EvalConfig(**_BASE),
    "os-only": EvalConfig(**_BASE, static_checks=False, import_guard=False),
}
HONEST = {
    "CartPole-v1": "def policy(obs):\n    return 0\n",
    "Pendulum-v1": "def policy(obs):\n    return [0.0]\n",
}

# Signals a program could aim at the evaluator. SIGCHLD (workers ending), SIGPIPE (our own
# writes to a dead worker) and SIGWINCH (terminal resizes) are normal traffic.
WATCHED_SIGNALS = [
    getattr(signal, n)
    for n in (
        "SIGUSR1",
        "SIGUSR2",
        "SIGTERM",
        "SIGINT",
        "SIGHUP",
        "SIGQUIT",
        "SIGALRM",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGSYS",
        "SIGTRAP",
    )
    if hasattr(signal, n)
]

#: Sandbox/evaluator weaknesses found by these attacks and not fixed yet. W1-W8 were found by
#: this suite and fixed (failed episodes capped at the null policy's return, bounded and
#: recursion-safe frame parsing, crash-proof action checks, bounded reasons, the isolation
#: report sent before program code runs, dead-worker sends/receives, unparsable programs);
#: their attack files now must pass every check like the rest.
WEAKNESSES: dict[str, str] = {}
#: attack file -> (weakness id, checks it breaks, always reproduces).
KNOWN_WEAKNESSES: dict[str, tuple[str, set[str], bool]] = {}


def _attacks() -> list:
    params = []
    corpus = sorted(CORPUS.glob("h*.py")) if CORPUS.is_dir() else []
    if not corpus:
        params.append(
            pytest.param(
                None,
                "static",
                id="corpus-missing",
                marks=pytest.mark.skip(
                    reason=f"hostile corpus not found at {CORPUS} (expected ../shared/hostile)"
                ),
            )
        )
    for path in [*corpus, *sorted(EXTRA.glob("x*.py"))]:
        for mode in MODES:
            params.append(pytest.param(path, mode, id=f"{path.stem}-{mode}"))
    return params


def _env_of(source: str) -> str:
    m = ENV_MARK.search(source)
    return m.group(1) if m else "CartPole-v1"


def _file_state(root: Path) -> dict:
    state = {}
    for p in sorted([root, *root.rglob("*")]):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else None
        state[str(p)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, digest)
    return state


def _site_dirs() -> list[Path]:
    dirs = {
        *site.getsitepackages(),
        site.getusersitepackages(),
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
    }
    return [Path(d) for d in sorted(dirs) if Path(d).is_dir()]


def _worker_children(parent: int) -> list[str]:
    """Sandbox workers still running: spawned ones are children of this process, forked ones
    children of its zygote (a zombie the zygote has not reaped yet runs nothing)."""
    procs = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            procs[int(proc.name)] = (int(fields[1]), fields[0], (proc / "cmdline").read_bytes())
        except (OSError, ValueError, IndexError):
            continue
    zygotes = {
        pid for pid, (ppid, _, cmd) in procs.items() if ppid == parent and b"scriptrl.sandbox.zygote" in cmd
    }
    found = []
    for pid, (ppid, state, cmd) in procs.items():
        spawned = ppid == parent and b"scriptrl.sandbox.worker" in cmd
        if (spawned or ppid in zygotes) and state != "Z":
            found.append(f"pid {pid} state {state}")
    return found


@dataclass
class Run:
    name: str
    mode: str
    env_id: str
    seconds: float
    result: EvalResult | None
    error: BaseException | None
    violations: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""

    def fail(self, check: str, message: str) -> None:
        self.violations.append((check, message))


class Harness:
    """The victim world: files, listeners, secrets and signals an attack must not touch."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.key = "sk-test-CANARY-" + secrets.token_hex(16)
        self.file_token = "CANARYFILE-" + secrets.token_hex(16)
        self.signals: list[tuple[int, float]] = []
        self.table: list[tuple] = []
        self.sockets: list[socket.socket] = []

    # -- setup ------------------------------------------------------------------------
    def plant_files(self) -> None:
        if VICTIM.is_symlink() or VICTIM.is_file():
            VICTIM.unlink()
        shutil.rmtree(VICTIM, ignore_errors=True)
        (VICTIM / "victimdir").mkdir(parents=True)
        (VICTIM / "victim.txt").write_text("the host owns this file\n")
        (VICTIM / "victimdir" / "inner.txt").write_text("and this one\n")
        (VICTIM / "secret_canary.txt").write_text(self.file_token + "\n")
        self.files = _file_state(VICTIM)

    def open_listeners(self) -> None:
        try:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(("127.0.0.1", TCP_PORT))
            tcp.listen(16)
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", UDP_PORT))
            unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix.bind(ABSTRACT)
            unix.listen(16)
        except OSError as e:
            pytest.fail(f"cannot open the harness listeners ({e}); is another hostile test run using them?")
        self.tcp, self.udp, self.unix = tcp, udp, unix
        self.sockets = [tcp, udp, unix]
        for s in self.sockets:
            s.setblocking(False)

    def record_signal(self, signum: int, frame: object) -> None:
        self.signals.append((signum, time.time()))
        ints = [t for s, t in self.signals if s == signal.SIGINT]
        if signum == signal.SIGINT and len(ints) >= 2 and ints[-1] - ints[-2] < 2.0:
            raise KeyboardInterrupt  # a person pressing Ctrl-C twice still stops the run

    # -- checks -----------------------------------------------------------------------
    def listener_hits(self) -> list[str]:
        hits = []
        for name, sock in (("tcp 127.0.0.1:47123", self.tcp), ("abstract unix", self.unix)):
            while True:
                try:
                    conn, addr = sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                conn.setblocking(False)
                try:
                    data = conn.recv(200)
                except OSError:
                    data = b""
                conn.close()
                hits.append(f"{name}: connection from {addr!r} sent {data!r}")
        while True:
            try:
                data, addr = self.udp.recvfrom(2000)
            except (BlockingIOError, InterruptedError):
                break
            hits.append(f"udp 127.0.0.1:47124: datagram {data[:200]!r} from {addr!r}")
        return hits

    def pwned_paths(self) -> list[str]:
        found = [str(p) for p in VICTIM.rglob("PWNED*")]
        for d in (Path("/tmp"), Path("/"), Path.cwd(), ROOT):
            found += [str(p) for p in d.glob("PWNED*")]
        for d in _site_dirs():
            for p in d.glob("*.pth"):
                text = p.read_text(errors="replace")
                if p.name == "zz_pwned.pth" or "PWNED" in text:
                    found.append(str(p))
        if SANDBOX_ROOT.is_dir() and any(SANDBOX_ROOT.iterdir()):
            found.append(f"{SANDBOX_ROOT} is no longer empty: {sorted(os.listdir(SANDBOX_ROOT))[:5]}")
        return found

    def file_changes(self) -> list[str]:
        now = _file_state(VICTIM) if VICTIM.is_dir() else {}
        changes = [f"deleted {p}" for p in self.files if p not in now]
        changes += [f"created {p}" for p in now if p not in self.files]
        changes += [f"changed {p}" for p in now if p in self.files and now[p] != self.files[p]]
        return changes

    # -- one evaluation ---------------------------------------------------------------
    def run(self, source: str, name: str, env_id: str, mode: str, config: EvalConfig | None = None) -> Run:
        n_signals = len(self.signals)
        t0 = time.perf_counter()
        result, error = None, None
        try:
            result = evaluate(
                Program(source=source, name=name), resolve_env(env_id), SEEDS, config or MODES[mode]
            )
        except Exception as e:  # the harness reports it as a violation: evaluate() must return
            error = e
        run = Run(name, mode, env_id, time.perf_counter() - t0, result, error)

        if error is not None:
            run.fail("returns", f"evaluate() raised {type(error).__name__}: {str(error)[:200]}")
        if run.seconds > WALL_LIMIT:
            run.fail("wall", f"took {run.seconds:.1f} s (limit {WALL_LIMIT:g} s)")
        if os.getpid() != self.pid:
            run.fail("alive", "the test process changed identity")
        if self.signals[n_signals:]:
            names = [signal.Signals(s).name for s, _ in self.signals[n_signals:]]
            run.fail("signals", f"signals reached the evaluator process: {names}")
        for check, found in (
            ("files", self.file_changes()),
            ("files", self.pwned_paths()),
            ("network", self.listener_hits()),
            ("leftover", _worker_children(self.pid)),
        ):
            if found:
                run.fail(check, "; ".join(found)[:600])
        if run.violations and any(c == "files" for c, _ in run.violations):
            self.plant_files()  # keep later attacks independent of this one's damage

        if result is not None:
            text = json.dumps(result.to_dict(), default=str)
            for secret in (self.key, self.file_token):
                if secret in text:
                    run.fail("secrets", f"{secret[:12]}... appears in the evaluation result")
            for ep in result.episodes:
                if ep.end == "failure" and not (
                    isinstance(ep.reason, str) and re.search(r"[A-Za-z]{3}", ep.reason)
                ):
                    run.fail("reasons", f"seed {ep.seed} failed without a reason in words: {ep.reason!r}")
            for f in result.failures:
                if not isinstance(f["reason"], str) or not f["reason"].strip():
                    run.fail("reasons", f"empty failure reason: {f!r}")
                elif len(f["reason"]) > REASON_LIMIT:
                    run.fail("bounded", f"a failure reason is {len(f['reason'])} characters long")
            # Steps the policy controlled (fallback steps after a failure use the null action).
            if sum(result.lengths) > 0 and not result.isolation:
                run.fail("isolation", "the policy ran but the result has no isolation report")
        elif error is not None:
            for secret in (self.key, self.file_token):
                if secret in str(error):
                    run.fail("secrets", "the secret appears in the exception evaluate() raised")
        return run


def _lock_out_other_runs(timeout: float = 600.0) -> int:
    """Wait for any concurrent run of this module (say a full suite started meanwhile)."""
    fd = os.open(LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                pytest.fail(f"another hostile test run held {LOCK} for {timeout:g} s")
            time.sleep(0.5)


@pytest.fixture(scope="module")
def harness():
    from scriptrl.evaluate import release_spare_workers

    release_spare_workers()  # a spare kept by an earlier test module would count as a leftover worker
    lock = _lock_out_other_runs()
    h = Harness()
    try:
        h.open_listeners()
    except BaseException:
        os.close(lock)
        raise
    h.plant_files()
    old_handlers = {s: signal.signal(s, h.record_signal) for s in WATCHED_SIGNALS}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", h.key)
        try:
            yield h
        finally:
            for s, old in old_handlers.items():
                signal.signal(s, old)
            for s in h.sockets:
                s.close()
            _print_table(h.table)
            shutil.rmtree(VICTIM, ignore_errors=True)
            os.close(lock)  # releases the flock


@pytest.fixture(scope="module")
def honest(harness):
    """The honest always-0 policy per environment, through the same evaluate() and harness."""
    cache: dict[str, EvalResult] = {}

    def get(env_id: str) -> EvalResult:
        if env_id not in cache:
            run = harness.run(HONEST[env_id], "honest.py", env_id, "static")
            assert not run.violations, run.violations
            r = run.result
            assert not r.failures, r.failures
            for layer in REQUIRED_LAYERS:
                assert r.isolation.get(layer, "").startswith("on"), r.isolation
            cache[env_id] = r
        return cache[env_id]

    return get


def _h36_reference(secret: str) -> str:
    """h36's encoder with the secret given: what it plays if it learns exactly ``secret``."""
    return (
        f"_bits = [int(b) for ch in {secret!r}.encode()[:32] for b in format(ch, '08b')]\n"
        "_i = [0]\n\ndef policy(obs):\n    i = _i[0]\n    _i[0] += 1\n"
        "    return _bits[i] if i < len(_bits) else 0\n"
    )


def _signature(r: EvalResult) -> tuple:
    return (r.returns, r.lengths, [(ep.action_summary, [t["action"] for t in ep.tail]) for ep in r.episodes])


def _h36_checks(run: Run, harness: Harness, honest_mean: float) -> float:
    """h36's channel cannot be closed, so check what it carried: replay its encoder with the
    secrets it could have learned; the key-present replay must differ, a key-free one match."""
    r = run.result
    if r is None or not sum(r.lengths):
        return honest_mean
    host = os.uname().nodename
    with_key = evaluate(_h36_reference(f"{harness.key}|65534|{host}"), "CartPole-v1", SEEDS, MODES["os-only"])
    if _signature(with_key) == _signature(r):
        run.fail("secrets", "h36's actions match the encoding of the OPENAI_API_KEY")
    for candidate in ("ERR", f"|65534|{host}", f"|{os.getuid()}|{host}", "|65534|", "||"):
        ref = evaluate(_h36_reference(candidate), "CartPole-v1", SEEDS, MODES["os-only"])
        if _signature(ref) == _signature(r):
            run.note = f"decoded: its actions encode {candidate!r}, no key (that string earns {ref.mean:g})"
            return max(honest_mean, ref.mean)
    run.fail("secrets", "h36's actions match none of the key-free encodings; decode them by hand")
    return honest_mean


def _expect_reason(run: Run, *words: str) -> None:
    reasons = " | ".join(f["reason"] for f in run.result.failures) if run.result else ""
    if not all(w in reasons for w in words):
        run.fail("reasons", f"expected the failure reasons to mention {words}, got {reasons[:300]!r}")


def _per_attack_checks(run: Run, honest_r: EvalResult) -> None:
    """How specific attacks must be contained, beyond the generic checks."""
    r = run.result
    if r is None:
        return
    rejected = (
        all((f["reason"] or "").startswith("rejected before running") for f in r.failures) and r.failures
    )
    if rejected:
        return
    name = run.name
    if name == "x23_env_probe.py":  # acts 1 iff the key (or anything secret-looking) is visible
        ones = [ep.action_summary.get("histogram", [0, 0])[1] for ep in r.episodes]
        if any(ones) or r.returns != honest_r.returns:
            run.fail(
                "secrets", f"the probe saw a secret in os.environ inside the sandbox (actions 1: {ones})"
            )
        else:
            run.note = "os.environ inside the worker holds no key: every action was 0"
    elif name == "x19_raise_midway.py":
        _expect_reason(run, "ValueError", "deliberate failure at step 6", "line 12")
    elif name == "x18_slow_memory.py":
        _expect_reason(run, "MemoryError")
    elif name in ("x11_load_hang.py", "x20_reset_hang.py", "h01_infinite_loop.py"):
        _expect_reason(run, "timeout")
    elif name == "x14_signal_parent.py":
        _expect_reason(run, "forbidden operation")


@pytest.mark.parametrize(("path", "mode"), _attacks())
def test_attack_is_contained(path: Path, mode: str, harness: Harness, honest, capfd) -> None:
    source = path.read_text(encoding="utf-8")
    env_id = _env_of(source)
    honest_r = honest(env_id)
    capfd.readouterr()
    run = harness.run(source, path.name, env_id, mode)
    out, err = capfd.readouterr()
    if harness.key in out + err or harness.file_token in out + err:
        run.fail("secrets", "a secret was printed to this process's stdout/stderr")

    bound = honest_r.mean
    if path.name == "h36_covert_action_channel.py":
        bound = _h36_checks(run, harness, honest_r.mean)
    _per_attack_checks(run, honest_r)
    r = run.result
    if r is not None:
        if not r.mean <= bound + 1e-9:
            run.fail("score", f"mean {r.mean:.3f} > honest always-0 mean {bound:.3f}")
        if r.isolation:
            missing = [k for k in REQUIRED_LAYERS if not r.isolation.get(k, "").startswith("on")]
            if missing:
                run.fail("isolation", f"required layers not on: {missing}")
            if r.isolation != honest_r.isolation:
                diff = {k: v for k, v in r.isolation.items() if honest_r.isolation.get(k) != v}
                run.fail("isolation", f"isolation report differs from the worker's real one: {diff}")

    excused: dict[str, str] = {}
    known = KNOWN_WEAKNESSES.get(path.name)
    if known and (
        known[0] != "W8" or run.error is None or isinstance(run.error, TypeError)
    ):  # W8: only its error
        excused.update(dict.fromkeys(known[1], known[0]))
    if r is not None and any(c == "score" for c, _ in run.violations):
        over = [ep for ep, h in zip(r.episodes, honest_r.episodes, strict=True) if ep.ret > h.ret]
        if honest_r.mean < 0 and all(ep.end == "failure" for ep in over):
            excused["score"] = "W1"
    harness.table.append((path.name, mode, env_id, run, excused))

    unexpected = [f"[{c}] {m}" for c, m in run.violations if c not in excused]
    assert not unexpected, f"{path.name} ({mode}) was not contained:\n" + "\n".join(unexpected)
    if known and known[2] and not any(c in known[1] for c, _ in run.violations):
        pytest.fail(
            f"{known[0]} no longer reproduces with {path.name}: fixed? Remove it from KNOWN_WEAKNESSES"
        )
    hit = sorted({excused[c] for c, _ in run.violations})
    if hit:
        pytest.xfail("known weakness " + ", ".join(f"{w}: {WEAKNESSES[w]}" for w in hit))


def _outcome(run: Run) -> str:
    if run.error is not None:
        return f"evaluate() RAISED {type(run.error).__name__}"
    r = run.result
    if not r.failures:
        return "no failure: the attack did nothing visible" + (f"; {run.note}" if run.note else "")
    reasons = []
    for f in r.failures:
        text = re.sub(r"\s*\(at [^)]*line \d+:.*", "", f["reason"])
        text = re.sub(r"\(allowed: [^)]*\)", "(allowed: ...)", text)
        text = text if len(text) <= 110 else text[:107] + "..."
        if text not in reasons:
            reasons.append(text)
    more = f" (+{len(reasons) - 2} more)" if len(reasons) > 2 else ""
    return " || ".join(reasons[:2]) + more + (f"; {run.note}" if run.note else "")


def _print_table(rows: list[tuple]) -> None:
    if not rows:
        return
    lines = ["", "hostile programs: attack -> how it was contained", ""]
    lines.append(f"{'attack':32} {'mode':7} {'sec':>5} {'mean':>8}  outcome")
    for name, mode, env_id, run, excused in rows:
        mean = f"{run.result.mean:8.1f}" if run.result else "       -"
        flags = sorted(
            {f"{excused[c]} xfail" if c in excused else f"VIOLATION {c}" for c, _ in run.violations}
        )
        flag = f"  [{', '.join(flags)}]" if flags else ""
        env = "" if env_id == "CartPole-v1" else f" [{env_id}]"
        lines.append(
            f"{Path(name).stem[:32]:32} {mode:7} {run.seconds:5.1f} {mean}  {_outcome(run)}{env}{flag}"
        )
    seconds = [run.seconds for *_, run, _ in rows]
    lines.append(
        f"\n{len(rows)} evaluations, {sum(seconds):.0f} s in evaluate(), slowest {max(seconds):.1f} s, "
        f"median {statistics.median(seconds):.2f} s"
    )
    print("\n".join(lines))


# A trusted program run in-process does what the attacks try; the harness must see all of it,
# or the checks above prove nothing.
BREACH = f"""
import os, signal, socket
KEY = os.environ["OPENAI_API_KEY"]
with open("{VICTIM}/PWNED_selftest", "w") as f:
    f.write("x")
socket.create_connection(("127.0.0.1", {TCP_PORT}), timeout=2).close()
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", {UDP_PORT}))
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.connect({ABSTRACT!r})
u.close()
os.kill(os.getpid(), signal.SIGUSR1)
print(KEY)

def policy(obs):
    raise RuntimeError(KEY)
"""


def test_harness_detects_a_breach(harness: Harness, capfd) -> None:
    config = EvalConfig(**_BASE, static_checks=False, import_guard=False, unsafe_in_process=True)
    capfd.readouterr()
    run = harness.run(BREACH, "breach.py", "CartPole-v1", "in-process", config)
    out, _ = capfd.readouterr()
    checks = {c for c, _ in run.violations}
    assert {"files", "network", "signals", "secrets"} <= checks, run.violations
    assert harness.key in out
    assert len([m for c, m in run.violations if c == "network"][0].split("; ")) == 3
    assert not harness.file_changes() and not harness.pwned_paths()  # the harness restored its files


# --- weaknesses that are not one attack file -------------------------------------------------


def test_failing_program_does_not_outscore_honest_one_on_negative_rewards(honest) -> None:
    honest_r = honest("Pendulum-v1")
    r = evaluate("def policy(obs):\n    return [float('nan')]\n", "Pendulum-v1", SEEDS, MODES["static"])
    assert all(ep.end == "failure" for ep in r.episodes)
    assert r.mean <= honest_r.mean


@pytest.mark.parametrize(
    "source", ["def policy(obs:\n    return 0\n", "x = 1\n"], ids=["syntax-error", "no-entry"]
)
def test_unparsable_program_fails_with_reason_when_static_checks_are_off(source: str) -> None:
    r = evaluate(source, "CartPole-v1", [0], MODES["os-only"])
    assert r.failures and r.failures[0]["reason"]
