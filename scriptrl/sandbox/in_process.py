"""A *trusted* program run in this process (``--unsafe-in-process``): the worker interface, no isolation."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from scriptrl.sandbox.exchange import ProgramLoadError, _Exchange

if TYPE_CHECKING:
    from scriptrl.sandbox.client import SandboxLimits
    from scriptrl.sandbox.trace_worker import TracingRunner
    from scriptrl.sandbox.worker import Runner


class InProcessWorker(_Exchange):
    """Runs a *trusted* program in this process (``--unsafe-in-process``): no isolation at all."""

    isolation = {"process": "off (in-process, --unsafe-in-process)"}
    pid = None
    start_method = "in-process"
    runner: Runner  # a TracingRunner when traced

    def __init__(self, limits: SandboxLimits | None = None, traced: bool = False) -> None:
        self.replies: list[dict] = []
        self.traced = traced

    def start(self) -> None:
        pass

    spawn = wait_ready = start

    def load(
        self,
        source: str,
        name: str,
        obs_codec: dict,
        seed: int,
        allowed_imports: list[str] | None,
        family: dict | None = None,
    ) -> dict:
        from scriptrl.sandbox.worker import Runner, _describe

        self.codec = obs_codec
        load = {"source": source, "name": name, "obs": obs_codec, "seed": seed, **(family or {})}
        try:
            if self.traced:
                from scriptrl.sandbox.trace_worker import TracingRunner

                self.runner = TracingRunner({**load, "allowed_imports": allowed_imports})
            else:
                self.runner = Runner(load)
        except Exception as e:
            raise ProgramLoadError(_describe(e, name), self.isolation) from None
        return self.isolation

    def send(self, header: dict, payload: bytes = b"", timeout: float = 10.0) -> None:
        if header.get("op") != "act":
            return
        if self.traced:  # the same two frames the sandboxed tracing worker sends
            actions, traces = cast("TracingRunner", self.runner).act_traced(header, payload)
            self.replies += [{"t": traces}, {"a": actions}]
        else:
            self.replies.append({"a": self.runner.act(header, payload)})

    def recv(self, timeout: float) -> dict:
        return self.replies.pop(0)

    def kill(self) -> None:
        pass

    close = kill
