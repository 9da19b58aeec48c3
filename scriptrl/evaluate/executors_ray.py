"""Evaluations on a Ray cluster, behind the same ``map``/``close`` interface as ``LocalExecutor``.

The search, the run store and every decision stay on the driver; the cluster only runs
evaluations. Each Ray actor is a trusted evaluator like a local pool process: it builds
the environments and starts a locked-down sandbox worker on its own node for the policy,
so untrusted code never runs in a Ray process and the sandbox's guarantees hold on every
node exactly as they do locally.

What crosses the wire: jobs go out as program source text plus the (plain-data)
``ResolvedEnv``, seeds and split; results come back as plain dicts of numbers, strings and
lists and are rebuilt into ``EvalResult`` here. Ray pickles both, which is acceptable only
because both ends are trusted scriptrl processes: a program's output never reaches pickle,
it reaches the evaluator as validated actions over the sandbox's JSON protocol.

Cost model (see benchmarks/RESULTS.md, "Executors: local pool vs Ray"): one actor call
costs about a millisecond of round trip on one machine, a few more across a network,
while one evaluation costs tens of milliseconds to seconds. Batching several programs per
call and keeping two calls queued on each actor hides that latency, so the actor is never
idle waiting for the driver. Episodes of one program are never split across calls: the
sandbox seeds the program's ``random`` from the first episode's seed, so splitting would
change the scores of programs that use randomness, and results must not depend on the
executor.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import socket
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from scriptrl.errors import UserError
from scriptrl.evaluate import Episode, EvalConfig, EvalResult
from scriptrl.evaluate.executors import EvalJob, run_job

#: Calls queued per actor: one running, one waiting, so the driver's round trip is hidden.
IN_FLIGHT_PER_ACTOR = 2
#: Upper bound on programs per call, so a long batch cannot leave other actors idle at the end.
MAX_BATCH = 8
_INSTALL_HINT = "the ray executor needs Ray: pip install 'scriptrl[ray]' (on the driver and on every node)"


def job_to_wire(job: EvalJob) -> dict[str, Any]:
    return {
        "source": job.source,
        "name": job.name,
        "env": job.env,
        "seeds": list(job.seeds),
        "split": job.split,
    }


def job_from_wire(d: dict[str, Any]) -> EvalJob:
    return EvalJob(d["source"], d["env"], tuple(d["seeds"]), d["split"], d["name"])


def result_to_wire(res: EvalResult) -> dict[str, Any]:
    """Only builtins, so the driver never depends on the worker's class layout to read a result."""
    return asdict(res)


def result_from_wire(d: dict[str, Any]) -> EvalResult:
    d = dict(d)
    d["episodes"] = [Episode(**ep) for ep in d["episodes"]]
    d["ci95"] = tuple(d["ci95"])
    if d.get("success_ci95") is not None:
        d["success_ci95"] = tuple(d["success_ci95"])
    return EvalResult(**d)


#: The code an actor runs to evaluate (the search and the generators stay on the driver).
_EVAL_CODE = (
    "evaluate/*.py",
    "program/*.py",
    "errors.py",
    "seeds.py",
    "success_rate.py",
    "envs/*.py",
    "sandbox/*.py",
)


@functools.cache
def code_digest() -> str:
    """A digest of the evaluation code: two checkouts with the same version number but
    different commits could score the same program differently, so the version is not enough."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted({p for pattern in _EVAL_CODE for p in root.glob(pattern)}):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _node_info() -> dict[str, str]:
    import gymnasium

    import scriptrl

    return {
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
        "scriptrl": scriptrl.__version__,
        "code": code_digest(),
        "gymnasium": gymnasium.__version__,
    }


class _Evaluator:
    """The body of one Ray actor: a long-lived trusted evaluator process on some node.

    Long-lived so the warm sandbox spare (``EvalConfig.warm_spare``) carries over from
    one evaluation to the next, which hides the sandbox interpreter's start-up just as
    the local pool does.
    """

    def __init__(self, config: EvalConfig) -> None:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        self.config = config

    def info(self) -> dict[str, str]:
        return _node_info()

    def ping(self) -> None:
        return None

    def run(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [result_to_wire(run_job(job_from_wire(j), self.config)) for j in jobs]

    def shutdown(self) -> None:
        """Kill the warm spare now: Ray ends actors with a signal, so atexit hooks may not run."""
        from scriptrl.evaluate import release_spare_workers

        release_spare_workers()


def batch_size(n_jobs: int, n_actors: int) -> int:
    """Programs per call: enough calls to give every actor two (load balance), no more."""
    return max(1, min(MAX_BATCH, math.ceil(n_jobs / (n_actors * IN_FLIGHT_PER_ACTOR))))


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on a wrong address: ``ray.init`` itself retries silently for minutes."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # "auto", "ray://..." and other forms Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise UserError(
            f"cannot reach a Ray head at {address} ({e.strerror or e}); start one with "
            "`ray start --head` or check --ray-address"
        ) from None


def _auth_hint(exc: BaseException) -> str:
    chain: list[str] = []
    e: BaseException | None = exc
    while e is not None:
        chain.append(str(e))
        e = e.__cause__ or e.__context__
    if any("auth" in text.lower() for text in chain):
        return (
            "; the cluster uses token authentication: set RAY_AUTH_MODE=token here and make its token "
            "available (~/.ray/auth_token or RAY_AUTH_TOKEN), see README 'Running on a cluster'"
        )
    return ""


class RayExecutor:
    """Evaluations as calls to Ray actors, one actor per CPU (or ``workers``) across the cluster.

    ``address`` is a running cluster's ``host:port`` (``ray start --head`` prints it); without
    it Ray follows ``RAY_ADDRESS`` or starts a private single-node instance, which is useful
    for trying the executor but no faster than the local pool.
    """

    on_this_machine = False  # its actors may share this machine, but the search cannot count on it

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        config: EvalConfig | None = None,
        ray_init: dict[str, Any] | None = None,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise UserError(_INSTALL_HINT) from None
        self._ray = ray
        self.config = replace(config or EvalConfig(), warm_spare=True)
        self._owns_connection = not ray.is_initialized()
        if self._owns_connection:
            kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING", **(ray_init or {})}
            if address is None and not os.environ.get("RAY_ADDRESS"):
                kwargs.setdefault("include_dashboard", False)
            if address:
                check_reachable(address)
            try:
                ray.init(address=address, **kwargs)
            except ConnectionError as e:
                raise UserError(
                    f"cannot connect to the Ray cluster at {address}: {str(e)[:300]}{_auth_hint(e)}"
                ) from None
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            raise UserError("the Ray cluster has no CPUs to run evaluations on")
        if workers is not None and workers > cpus:
            raise UserError(f"--workers {workers} is more than the Ray cluster's {cpus} CPUs")
        self.workers = workers or cpus
        # No restarts: an actor on a lost node could only restart where every CPU is taken
        # by the others, and its calls would wait forever. A dead actor's calls go to the
        # living ones instead, and replacements start when CPUs are free again.
        self._actor_cls = ray.remote(num_cpus=1, max_restarts=0)(_Evaluator)
        self._actors: list[Any] = []
        self.nodes: list[dict[str, str]] = []
        self._replenish()

    def _replenish(self) -> None:
        missing = self.workers - len(self._actors)
        if self._actors:  # first start: wait for all of them; later: only what is free now
            missing = min(missing, int(self._ray.available_resources().get("CPU", 0)))
        if missing <= 0:
            return
        # SPREAD puts actors on different nodes first, so fewer workers than CPUs still use
        # every machine instead of packing onto one.
        new = [
            self._actor_cls.options(scheduling_strategy="SPREAD").remote(self.config) for _ in range(missing)
        ]
        self.nodes += self._handshake(new)
        self._actors += new

    def _handshake(self, actors: list) -> list[dict[str, str]]:
        """Refuse a cluster whose nodes run another scriptrl or gymnasium: the same program
        and seeds must give the same scores whichever node evaluates them."""
        infos = self._ray.get([a.info.remote() for a in actors])
        mine = _node_info()
        for info in infos:
            for key, what in (
                ("scriptrl", "scriptrl"),
                ("code", "scriptrl source digest"),
                ("gymnasium", "gymnasium"),
            ):
                if info[key] != mine[key]:
                    for a in actors:
                        self._ray.kill(a)
                    self.close()
                    raise UserError(
                        f"node {info['host']} has {what} {info[key]} but this machine has {mine[key]}; "
                        "install the same scriptrl commit and gymnasium on every node"
                    )
        return infos

    def map(self, jobs: Sequence[EvalJob]) -> list[EvalResult]:
        """Results in job order, whatever order they finish in, so runs are reproducible."""
        if not jobs:
            return []
        ray = self._ray
        self._replenish()
        actors = list(self._actors)
        size = batch_size(len(jobs), len(actors))
        queue = deque(
            [(i, job_to_wire(j)) for i, j in enumerate(jobs[k : k + size], start=k)]
            for k in range(0, len(jobs), size)
        )
        results: list[EvalResult | None] = [None] * len(jobs)
        inflight: dict[Any, tuple[Any, list]] = {}
        load = {id(a): 0 for a in actors}

        def fill() -> None:
            """Queue calls on every living actor up to IN_FLIGHT_PER_ACTOR, least loaded first."""
            while queue and actors:
                a = min(actors, key=lambda x: load[id(x)])
                if load[id(a)] >= IN_FLIGHT_PER_ACTOR:
                    return
                batch = queue.popleft()
                inflight[a.run.remote([w for _, w in batch])] = (a, batch)
                load[id(a)] += 1

        fill()
        try:
            while inflight:
                done, _ = ray.wait(list(inflight), num_returns=1)
                a, batch = inflight.pop(done[0])
                load[id(a)] -= 1
                try:
                    out = ray.get(done[0])
                except ray.exceptions.RayTaskError as e:
                    raise e.as_instanceof_cause() from None  # the evaluator's own error (a bad env, ...)
                except ray.exceptions.RayActorError as e:
                    # Its node was lost or its process killed: evaluations are deterministic,
                    # so the batch simply runs again elsewhere.
                    queue.appendleft(batch)
                    if a in actors:
                        actors.remove(a)
                        self._actors.remove(a)
                    if not actors:
                        raise UserError(
                            f"every Ray evaluator died (last: {str(e).splitlines()[0][:200]})"
                        ) from None
                    fill()
                    continue
                for (i, _), wire in zip(batch, out, strict=True):
                    results[i] = result_from_wire(wire)
                fill()
        except BaseException:
            for ref in inflight:
                ray.cancel(ref)
            raise
        return results  # type: ignore[return-value]

    def ping(self) -> float:
        """Seconds for one empty call to every actor and back: the per-call overhead."""
        import time

        t0 = time.perf_counter()
        self._ray.get([a.ping.remote() for a in self._actors])
        return time.perf_counter() - t0

    def close(self) -> None:
        ray = self._ray
        if self._actors:
            try:
                ray.get([a.shutdown.remote() for a in self._actors], timeout=10)
            except Exception:  # a dead actor's spare died with its process group's pipes
                pass
            for a in self._actors:
                ray.kill(a)
            self._actors = []
        if self._owns_connection and ray.is_initialized():
            ray.shutdown()
            self._owns_connection = False
