"""The sandbox worker: a fresh process that locks itself down, then runs one program.

It is either forked by the zygote (``scriptrl.sandbox.zygote``, the default: the imports
were done there, before any program existed) or started as ``python -I -c <boot>`` with a
scrubbed environment and two pipe descriptors; from the load message on both run ``serve``.
Everything it will ever need is imported before lockdown. It only turns
batches of observations into batches of actions; it never sees the environment, so it
cannot reach, patch or copy the simulator, and what it sends back is plain JSON that the
trusted side validates. Nothing here is trusted by the evaluator.
"""

from __future__ import annotations

import builtins
import os
import sys
import traceback
import types
from typing import Any


def _channel_from_argv() -> tuple[int, int]:
    """The channel of a spawned worker: the two descriptors named on its command line."""
    return channel_at_3_and_4(int(sys.argv[-2]), int(sys.argv[-1]))


def channel_at_3_and_4(rfd: int, wfd: int) -> tuple[int, int]:
    """Put the two channel descriptors at 3 and 4, so the fd limit can forbid any new one."""
    os.dup2(rfd, 100)
    os.dup2(wfd, 101)
    for fd in {rfd, wfd} - {100, 101}:
        os.close(fd)
    os.dup2(100, 3)
    os.dup2(101, 4)
    os.close(100)
    os.close(101)
    return 3, 4


def main() -> None:
    rfd, wfd = _channel_from_argv()
    from scriptrl.sandbox import lockdown, protocol

    try:
        lockdown.warm_up()
    except BaseException as e:  # the worker could not even start: say why, then stop
        protocol.write_frame(wfd, {"op": "ready", "ok": False, "error": f"worker start failed: {e!r}"})
        return
    protocol.write_frame(wfd, {"op": "ready", "ok": True})
    serve(rfd, wfd, lockdown.SPAWNED)


def serve(rfd: int, wfd: int, process: str) -> None:
    """Lock down, report the layers, load the program and answer batches until told to stop.

    Shared by a spawned worker and one forked by the zygote (``process`` says which, for the
    report): everything from the load message on is the same code in the same order.
    """
    from scriptrl.sandbox import lockdown, protocol

    try:
        load, _ = protocol.read_frame(rfd)
    except EOFError:
        return
    isolation = lockdown.apply(load.get("limits", {}), (rfd, wfd), process)
    protocol.write_frame(wfd, {"op": "isolation", "isolation": isolation})  # before any program code runs
    try:
        runner = Runner(load)
    except BaseException as e:
        protocol.write_frame(wfd, {"ok": False, "error": _describe(e, load.get("name", "policy.py"))})
        return
    protocol.write_frame(wfd, {"ok": True, "kind": runner.kind})
    while True:
        try:
            header, payload = protocol.read_frame(rfd)
        except EOFError:
            return
        if header.get("op") != "act":
            return
        protocol.write_frame(wfd, {"a": runner.act(header, payload)})


class Runner:
    """Holds the loaded program and turns observation batches into encoded actions."""

    def __init__(self, load: dict) -> None:
        import random

        import numpy as np

        self.np = np
        self.name = load.get("name", "policy.py")
        self.codec = load.get("obs", {"kind": "json"})
        seed = int(load.get("seed", 0))
        random.seed(seed)
        np.random.seed(seed % (2**32))
        source = load["source"]
        import linecache

        linecache.cache[self.name] = (len(source), None, source.splitlines(True), self.name)
        self.module = module = self._run_module(source, load.get("allowed_imports"))
        namespace = module.__dict__
        # A family (``scriptrl.evaluate.family``): this program and variants of it that differ
        # only in their numbers (variant i >= 1), each in a module of its own, and the variant
        # each episode id runs.
        variants = load.get("variants") or []
        self.variant_of: list[int] = [int(v) for v in load.get("variant_of") or []]
        self.fns: list = []
        if variants:
            allowed = load.get("allowed_imports")
            self.variant_modules = [module] + [self._run_module(v, allowed) for v in variants]
            for m in self.variant_modules:
                fn = m.__dict__.get("policy")
                if not callable(fn):
                    raise LookupError("a family of variants needs def policy(obs) in every variant")
                self.fns.append(fn)
        if callable(namespace.get("policy")):
            self.kind = "function"
            self.fn = namespace["policy"]
        elif isinstance(namespace.get("Policy"), type):
            self.kind = "class"
            self.cls = namespace["Policy"]
            self.instances: dict[int, Any] = {}  # the program's own Policy objects, duck-typed
        else:
            raise LookupError(
                "no entry point: define policy(obs) or class Policy with reset(seed) and act(obs)"
            )

    def _run_module(self, source: str, allowed_imports: list[str] | None) -> types.ModuleType:
        """The program's top level run in a fresh module of its own."""
        module = _program_module()  # kept: its functions' globals are its dict
        module.__dict__.update({"__builtins__": _guarded_builtins(allowed_imports), **self.extra_globals()})
        try:
            exec(self.compile_program(source), module.__dict__)
        finally:  # registered only while its classes are made (in-process, scriptrl's own sys.modules)
            if sys.modules.get(module.__name__) is module:
                del sys.modules[module.__name__]
        return module

    def compile_program(self, source: str):
        """The code object to run (the tracer compiles an instrumented tree instead)."""
        return compile(source, self.name, "exec", dont_inherit=True)  # not this file's __future__ flags

    def extra_globals(self) -> dict:
        """Names added to the program's globals (the tracer adds its recorder)."""
        return {}

    def decode(self, header: dict, payload: bytes) -> list:
        kind = self.codec.get("kind")
        if kind == "box":
            np = self.np
            arr = np.frombuffer(bytearray(payload), dtype=self.codec["dtype"])
            return list(arr.reshape((len(header["ids"]), *self.codec["shape"])))
        obs = header["obs"]
        if kind == "tuple":
            return [tuple(o) for o in obs]
        return obs

    def act(self, header: dict, payload: bytes) -> list:
        obs = self.decode(header, payload)
        ids = header["ids"]
        out = []
        if self.fns:
            fns, of = self.fns, self.variant_of
            for eid, o in zip(ids, obs, strict=False):
                try:
                    out.append(self.encode(fns[of[eid]](o)))
                except BaseException as e:
                    out.append({"t": "err", "m": _describe(e, self.name)})
            return out
        if self.kind == "function":
            fn = self.fn
            for o in obs:
                try:
                    out.append(self.encode(fn(o)))
                except BaseException as e:
                    out.append({"t": "err", "m": _describe(e, self.name)})
            return out
        failed = self.update_instances(header)
        for eid, o in zip(ids, obs, strict=False):
            if eid in failed:
                out.append(failed[eid])
                continue
            try:
                out.append(self.encode(self.instances[eid].act(o)))
            except BaseException as e:
                out.append({"t": "err", "m": _describe(e, self.name)})
        return out

    def update_instances(self, header: dict) -> dict[int, dict]:
        """Drop ended episodes' Policy instances and start new ones; return the errors of
        those whose constructor or reset() raised, keyed by episode id."""
        for eid in header.get("end", ()):
            self.instances.pop(eid, None)
        failed: dict[int, dict] = {}
        for eid, seed in header.get("new", ()):
            try:
                inst = self.cls()
                if _takes_argument(inst.reset):
                    inst.reset(seed)
                else:
                    inst.reset()
                self.instances[eid] = inst
            except BaseException as e:
                failed[eid] = {"t": "err", "m": _describe(e, self.name)}
        return failed

    def encode(self, a: object) -> object:
        """Describe an action as plain data; the trusted side decides whether it is valid."""
        np = self.np
        t = type(a)
        if t is int or t is float:
            return a
        if t is bool or t is np.bool_:
            return {"t": "bool"}
        if isinstance(a, np.integer):
            return int(a)
        if isinstance(a, np.floating):
            return float(a)
        if t is np.ndarray or t is list or t is tuple:
            try:
                arr = np.asarray(a)
            except BaseException:
                return {"t": "other", "type": f"{t.__name__} that is not numeric"}
            if arr.dtype.kind not in "biuf":
                return {"t": "other", "type": f"{t.__name__} of {arr.dtype}"}
            if arr.size > 4096:
                return {"t": "other", "type": f"array of {arr.size} elements"}
            return {"t": "arr", "k": arr.dtype.kind, "s": list(arr.shape), "v": arr.ravel().tolist()}
        return {"t": "other", "type": t.__name__}


#: The program's module name: dataclasses, enum and typing look classes up in
#: ``sys.modules[cls.__module__]`` while they are made, so the program runs as a module
#: registered there until its top level has run.
PROGRAM_MODULE = "policy"


def _program_module() -> types.ModuleType:
    """A fresh module for the program, registered in ``sys.modules``. In-process (a trusted
    program in scriptrl's own interpreter) a real module named ``policy`` is never replaced."""
    name = PROGRAM_MODULE if PROGRAM_MODULE not in sys.modules else "scriptrl_program"
    module = types.ModuleType(name)
    sys.modules[name] = module
    return module


def _takes_argument(method: object) -> bool:
    """Whether a bound ``reset`` accepts the episode's seed: ``reset(self, seed)`` and
    ``reset(self)`` are both ordinary ways to write it."""
    import inspect

    try:
        inspect.signature(method).bind(0)  # type: ignore[arg-type]
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): pass the seed as documented
        return True
    return True


def _guarded_builtins(allowed: list[str] | None) -> dict:
    """A builtins copy whose __import__ gives a clear error for modules outside the allow-list."""
    b = dict(builtins.__dict__)
    if allowed is None:
        return b
    allow = frozenset(allowed)
    real_import = builtins.__import__

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level or name.split(".")[0] not in allow:
            raise ImportError(
                f"import of '{name}' is not allowed in a policy (allowed: {', '.join(sorted(allow))})"
            )
        return real_import(name, globals, locals, fromlist, level)

    b["__import__"] = guarded_import
    return b


def _describe(e: BaseException, name: str) -> str:
    """One line: the exception and the program line that raised it."""
    where = ""
    try:
        for frame in reversed(traceback.extract_tb(e.__traceback__)):
            if frame.filename == name:
                where = f" (at {name} line {frame.lineno}: {(frame.line or '').strip()[:80]})"
                break
    except BaseException:
        pass
    try:
        text = str(e)
    except BaseException:
        text = "<unprintable>"
    return f"{type(e).__name__}: {text[:200]}{where}"


if __name__ == "__main__":
    main()
