"""A sandbox worker that also says which lines ran and which conditions decided each action.

Security choice: tracing (``sys.settrace``) has to run where the policy runs, and a policy
may be untrusted, so it runs *here*, inside the same locked-down worker as evaluation:
this module reuses the plain worker's channel set-up, lockdown, ``Runner`` helpers and wire
protocol (imported, not copied) and only swaps how the program is loaded and called. The
trusted side receives plain JSON and bounds and validates it like any worker reply; a
policy can lie about its own trace, but it cannot reach the evaluator through it.

Only ``scriptrl explain`` starts this worker. ``train`` and ``eval`` start
``scriptrl.sandbox.worker``, which never sets a trace function, so tracing never slows them.

How a condition's value is seen: Python 3.11 has no branch events, and one line such as
``return 1 if s > 0 else 0`` holds the whole decision, so every condition (``if``/``elif``/
``while`` tests, conditional expressions, comprehension filters and the operands of
``and``/``or``/``not`` inside them) is wrapped, in the parsed tree, in a call that records
its truth value and returns it as a bool. Positions are kept, so line numbers and
tracebacks are those of the file as written. ``instrument`` is deterministic, so the
trusted side parses the same source and numbers the same conditions without trusting the
worker's description of them.
"""

from __future__ import annotations

import ast
import sys

from scriptrl.sandbox import lockdown, protocol
from scriptrl.sandbox.worker import Runner, _channel_from_argv, _describe, _guarded_builtins

#: The recorder's name in the program's namespace; static checks forbid dunder names in a
#: policy, so a checked program can neither shadow nor call it.
RECORDER = "__scriptrl_cond__"
#: Bounds per call, so a looping policy cannot make a reply unbounded.
MAX_CONDITIONS = 400
MAX_SEQUENCE = 400


def instrument(source: str, name: str = "policy.py") -> tuple[ast.Module, list[tuple[int, str]]]:
    """Parse ``source`` and wrap every condition; return the tree and (line, text) per condition id."""
    tree = ast.parse(source, filename=name)
    wrapper = _Conditions(source)
    tree = wrapper.visit(tree)
    ast.fix_missing_locations(tree)
    return tree, wrapper.sites


class _Conditions(ast.NodeTransformer):
    def __init__(self, source: str) -> None:
        self.source = source
        self.sites: list[tuple[int, str]] = []

    def _wrap(self, test: ast.expr) -> ast.expr:
        text = ast.get_source_segment(self.source, test) or ast.unparse(test)
        k = len(self.sites)
        self.sites.append((test.lineno, " ".join(text.split())[:160]))
        if isinstance(test, ast.BoolOp):
            test.values = [self._wrap(v) for v in test.values]
        elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test.operand = self._wrap(test.operand)
        call = ast.Call(func=ast.Name(RECORDER, ast.Load()), args=[ast.Constant(k), test], keywords=[])
        return ast.copy_location(call, test)

    def visit_If(self, node: ast.If) -> ast.AST:
        node.test = self._wrap(node.test)
        self.generic_visit(node)
        return node

    visit_While = visit_If

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        node.test = self._wrap(node.test)
        self.generic_visit(node)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        node.ifs = [self._wrap(t) for t in node.ifs]
        self.generic_visit(node)
        return node


class _Call:
    """What one policy call did: line counts, the order of lines, conditions, the deciding line."""

    __slots__ = ("counts", "sequence", "conditions", "entry", "line", "raised")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.sequence: list[int] = []
        self.conditions: list[list[int]] = []
        self.entry = None
        self.line: int | None = None
        self.raised = False

    def to_json(self) -> dict:
        return {"l": [[k, v] for k, v in self.counts.items()], "s": self.sequence, "c": self.conditions,
                "r": self.line, "e": self.raised}  # fmt: skip


class TracingRunner(Runner):
    """``Runner`` with the program loaded instrumented and every call traced."""

    def __init__(self, load: dict) -> None:
        import linecache
        import random

        import numpy as np

        self.np = np
        self.name = load.get("name", "policy.py")
        self.codec = load.get("obs", {"kind": "json"})
        seed = int(load.get("seed", 0))
        random.seed(seed)
        np.random.seed(seed % (2**32))
        source = load["source"]
        linecache.cache[self.name] = (len(source), None, source.splitlines(True), self.name)
        tree, _ = instrument(source, self.name)
        self.call: _Call | None = None
        namespace: dict = {"__name__": "policy", "__builtins__": _guarded_builtins(load.get("allowed_imports")),
                           RECORDER: self._record}  # fmt: skip
        exec(compile(tree, self.name, "exec"), namespace)
        if callable(namespace.get("policy")):
            self.kind = "function"
            self.fn = namespace["policy"]
        elif isinstance(namespace.get("Policy"), type):
            self.kind = "class"
            self.cls = namespace["Policy"]
            self.instances: dict[int, object] = {}
        else:
            raise LookupError("no entry point: define policy(obs) or class Policy with reset(seed) and act(obs)")

    def _record(self, k: int, value: object) -> bool:
        b = bool(value)
        call = self.call
        if call is not None and len(call.conditions) < MAX_CONDITIONS:
            call.conditions.append([k, int(b)])
        return b

    def _tracer(self, frame, event, arg):
        if frame.f_code.co_filename != self.name:
            return None
        call = self.call
        if call is not None and call.entry is None:
            call.entry = frame
        return self._local

    def _local(self, frame, event, arg):
        call = self.call
        if call is None:
            return None
        if event == "line":
            n = frame.f_lineno
            call.counts[n] = call.counts.get(n, 0) + 1
            if len(call.sequence) < MAX_SEQUENCE:
                call.sequence.append(n)
            if frame is call.entry:
                call.raised = False  # an exception raised earlier in this frame was caught
        elif frame is call.entry:
            if event == "exception":
                call.raised = True
            elif event == "return":
                call.line = frame.f_lineno
        return self._local

    def traced(self, fn, obs) -> tuple[object, BaseException | None, dict]:
        """Call ``fn(obs)`` under the tracer; the previous trace function (a coverage tool's) comes back after."""
        self.call = _Call()
        action, error = None, None
        previous = sys.gettrace()
        sys.settrace(self._tracer)
        try:
            action = fn(obs)
        except BaseException as e:  # the policy's own failure: reported, like the plain worker does
            error = e
        finally:
            sys.settrace(previous)
            call, self.call = self.call, None
        if error is not None:
            call.raised = True
        return action, error, call.to_json()

    def act_traced(self, header: dict, payload: bytes) -> tuple[list, list]:
        obs = self.decode(header, payload)
        ids = header["ids"]
        out: list = []
        traces: list = []

        def one(fn, o) -> None:
            action, error, call_trace = self.traced(fn, o)
            out.append(self.encode(action) if error is None else {"t": "err", "m": _describe(error, self.name)})
            traces.append(call_trace)

        if self.kind == "function":
            for o in obs:
                one(self.fn, o)
            return out, traces
        for eid in header.get("end", ()):
            self.instances.pop(eid, None)
        failed: dict[int, dict] = {}
        for eid, seed in header.get("new", ()):
            try:
                inst = self.cls()
                inst.reset(seed)
                self.instances[eid] = inst
            except BaseException as e:
                failed[eid] = {"t": "err", "m": _describe(e, self.name)}
        for eid, o in zip(ids, obs, strict=False):
            if eid in failed:
                out.append(failed[eid])
                traces.append({"l": [], "s": [], "c": [], "r": None, "e": True})
                continue
            inst = self.instances.get(eid)
            if inst is None:
                out.append({"t": "err", "m": f"no policy instance for episode {eid}"})
                traces.append({"l": [], "s": [], "c": [], "r": None, "e": True})
                continue
            one(inst.act, o)
        return out, traces


def main() -> None:
    """The plain worker's life cycle (ready, load after lockdown, act loop) with traced replies."""
    rfd, wfd = _channel_from_argv()
    try:
        lockdown.warm_up()
        ast.parse("x = 1 if y else 2")  # the parser's lazy parts load before the filesystem goes away
    except BaseException as e:
        protocol.write_frame(wfd, {"op": "ready", "ok": False, "error": f"worker start failed: {e!r}"})
        return
    protocol.write_frame(wfd, {"op": "ready", "ok": True})
    try:
        load, _ = protocol.read_frame(rfd)
    except EOFError:
        return
    isolation = lockdown.apply(load.get("limits", {}), (rfd, wfd))
    try:
        runner = TracingRunner(load)
    except BaseException as e:
        protocol.write_frame(wfd, {"ok": False, "error": _describe(e, load.get("name", "policy.py")), "isolation": isolation})
        return
    protocol.write_frame(wfd, {"ok": True, "kind": runner.kind, "isolation": isolation})
    while True:
        try:
            header, payload = protocol.read_frame(rfd)
        except EOFError:
            return
        if header.get("op") != "act":
            return
        actions, traces = runner.act_traced(header, payload)
        protocol.write_frame(wfd, {"a": actions, "t": traces})


if __name__ == "__main__":
    main()
