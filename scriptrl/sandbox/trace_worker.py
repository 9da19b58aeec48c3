"""A sandbox worker that also says which lines ran and which conditions decided each action.

Security choice: tracing (``sys.settrace``) has to run where the policy runs, and a policy
may be untrusted, so it runs *here*, inside the same locked-down worker as evaluation:
``main`` runs the plain worker's own ``main`` (boot, lockdown, isolation report, act
loop: imported, not copied) with ``TracingRunner`` swapped in for its ``Runner``. The
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

The values a condition compared are recorded too: each operand of a comparison (and a test
that is not a comparison, such as ``if left_lane:``) is wrapped in a second call that keeps
its value when it is a real number and returns it unchanged, so ``explain`` can say
``u < -0.273`` held because ``u`` was -1.2. Constants are not wrapped: their text says them.
"""

from __future__ import annotations

import ast
import math
import numbers
import sys
from types import FrameType
from typing import TYPE_CHECKING

from scriptrl.sandbox import protocol
from scriptrl.sandbox.worker import Runner, _describe

if TYPE_CHECKING:
    from _typeshed import TraceFunction  # exists only for the type checker

#: The recorder's name in the program's namespace; static checks forbid dunder names in a
#: policy, so a checked program can neither shadow nor call it.
RECORDER = "__scriptrl_cond__"
#: The operand recorder's name (a dunder name too, for the same reason).
VALUE_RECORDER = "__scriptrl_val__"
#: Bounds per call, so a looping policy cannot make a reply unbounded.
MAX_CONDITIONS = 400
MAX_SEQUENCE = 400
MAX_VALUES = 400


def instrument(source: str, name: str = "policy.py") -> tuple[ast.Module, list[tuple[int, str]]]:
    """Parse ``source`` and wrap every condition; return the tree and (line, text) per condition id."""
    tree, wrapper = _instrumented(source, name)
    return tree, wrapper.sites


def condition_operands(source: str, name: str = "policy.py") -> list[list[str]]:
    """Per condition id, the text of each operand whose value the worker records (by position);
    an empty string where the operand is a constant (not recorded)."""
    return _instrumented(source, name)[1].operands


def _instrumented(source: str, name: str) -> tuple[ast.Module, _Conditions]:
    tree = ast.parse(source, filename=name)
    wrapper = _Conditions(source)
    tree = wrapper.visit(tree)
    ast.fix_missing_locations(tree)
    return tree, wrapper


def _is_constant(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return isinstance(node, ast.Constant)


class _Conditions(ast.NodeTransformer):
    def __init__(self, source: str) -> None:
        self.source = source
        self.sites: list[tuple[int, str]] = []
        self.operands: list[list[str]] = []

    def _text(self, node: ast.expr) -> str:
        return " ".join((ast.get_source_segment(self.source, node) or ast.unparse(node)).split())[:160]

    def _value(self, k: int, j: int, node: ast.expr) -> ast.expr:
        """``node`` wrapped so its value is recorded as operand ``j`` of condition ``k``."""
        self.operands[k].append("" if _is_constant(node) else self._text(node))
        if _is_constant(node):
            return node
        call = ast.Call(
            func=ast.Name(VALUE_RECORDER, ast.Load()),
            args=[ast.Constant(k), ast.Constant(j), node],
            keywords=[],
        )
        return ast.copy_location(call, node)

    def _wrap(self, test: ast.expr) -> ast.expr:
        k = len(self.sites)
        self.sites.append((test.lineno, self._text(test)))
        self.operands.append([])
        if isinstance(test, ast.BoolOp):
            test.values = [self._wrap(v) for v in test.values]
        elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test.operand = self._wrap(test.operand)
        elif isinstance(test, ast.Compare):
            test.left = self._value(k, 0, test.left)
            test.comparators = [self._value(k, j, c) for j, c in enumerate(test.comparators, start=1)]
        else:
            test = self._value(k, 0, test)
        call = ast.Call(func=ast.Name(RECORDER, ast.Load()), args=[ast.Constant(k), test], keywords=[])
        return ast.copy_location(call, test)

    def visit_If(self, node: ast.If | ast.While) -> ast.AST:
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

    __slots__ = ("counts", "sequence", "conditions", "values", "entry", "line", "raised")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.sequence: list[int] = []
        self.conditions: list[list[int]] = []
        self.values: list[list] = []  # [condition id, operand position, number or "inf"/"-inf"/"nan"]
        self.entry: FrameType | None = None  # the frame of the traced call itself
        self.line: int | None = None
        self.raised = False

    def to_json(self) -> dict:
        return {
            "l": [[k, v] for k, v in self.counts.items()],
            "s": self.sequence,
            "c": self.conditions,
            "v": self.values,
            "r": self.line,
            "e": self.raised,
        }


class TracingRunner(Runner):
    """``Runner`` with the program loaded instrumented and every call traced."""

    trace_fd: int | None = None  # the reply channel, set by main(); None in-process

    def __init__(self, load: dict) -> None:
        self.call: _Call | None = None
        super().__init__(load)

    def compile_program(self, source: str):
        tree, _ = instrument(source, self.name)
        return compile(tree, self.name, "exec", dont_inherit=True)  # not this file's __future__ flags

    def extra_globals(self) -> dict:
        return {RECORDER: self._record, VALUE_RECORDER: self._record_value}

    def _record(self, k: int, value: object) -> bool:
        b = bool(value)
        call = self.call
        if call is not None and len(call.conditions) < MAX_CONDITIONS:
            call.conditions.append([k, int(b)])
        return b

    def _record_value(self, k: int, j: int, value: object) -> object:
        call = self.call
        if call is not None and len(call.values) < MAX_VALUES and isinstance(value, numbers.Real):
            try:
                x = float(value)
            except Exception:  # a policy's own number type that will not convert: not recorded
                return value
            call.values.append([k, j, x if math.isfinite(x) else str(x)])
        return value

    def _tracer(self, frame: FrameType, event: str, arg: object) -> TraceFunction | None:
        if frame.f_code.co_filename != self.name:
            return None
        call = self.call
        if call is not None and call.entry is None:
            call.entry = frame
        return self._local

    def _local(self, frame: FrameType, event: str, arg: object) -> TraceFunction | None:
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
        """Call ``fn(obs)`` under the tracer; the previous trace function (a coverage tool's) comes
        back after."""
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

    def act(self, header: dict, payload: bytes) -> list:
        """Actions for the plain worker loop to send; the traces go first, in their own frame."""
        actions, traces = self.act_traced(header, payload)
        if self.trace_fd is None:
            self.last_traces = traces
        else:
            protocol.write_frame(self.trace_fd, {"t": traces})
        return actions

    def act_traced(self, header: dict, payload: bytes) -> tuple[list, list]:
        obs = self.decode(header, payload)
        ids = header["ids"]
        out: list = []
        traces: list = []

        def one(fn, o) -> None:
            action, error, call_trace = self.traced(fn, o)
            out.append(
                self.encode(action) if error is None else {"t": "err", "m": _describe(error, self.name)}
            )
            traces.append(call_trace)

        if self.kind == "function":
            for o in obs:
                one(self.fn, o)
            return out, traces
        failed = self.update_instances(header)
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
    """The plain worker's own ``main`` (boot, lockdown, isolation report, act loop), with this
    module's ``TracingRunner`` in place of its ``Runner``; each reply of actions is preceded
    by one frame of traces, written on the same channel."""
    from scriptrl.sandbox import worker

    original_channel = worker._channel_from_argv

    def channel() -> tuple[int, int]:
        rfd, wfd = original_channel()
        TracingRunner.trace_fd = wfd
        return rfd, wfd

    worker._channel_from_argv = channel
    worker.Runner = TracingRunner  # type: ignore[misc]  # swapping the worker's class is the point
    worker.main()


def serve_forked(rfd: int, wfd: int, process: str) -> None:
    """The same swap for a worker forked by the zygote: its ``serve`` with this ``TracingRunner``."""
    from scriptrl.sandbox import worker

    TracingRunner.trace_fd = wfd
    worker.Runner = TracingRunner  # type: ignore[misc]  # swapping the worker's class is the point
    worker.serve(rfd, wfd, process)


if __name__ == "__main__":
    main()
