"""Parsing from several threads at once (the model lane, two evaluations per evaluator process).

On CPython 3.11 plain ``ast.parse`` under this workload fails with "SystemError: AST constructor
recursion depth mismatch" (measured: 26 failures in 240 parses with 4 threads); ``parse_python`` must not."""

import ast
import gc
import sys
import threading

from scriptrl.program.parsing import parse_python

SOURCE = (
    "def policy(obs):\n"
    + "".join(f"    x{i} = ({i} + obs[0]) * {i}.5 - abs(obs[1])\n" for i in range(300))
    + "    return 1\n"
)


class _Cycle:
    """Cyclic garbage with a finalizer: collecting it runs Python code, which lets threads switch
    in the middle of building a tree."""

    def __del__(self) -> None:
        pass


def test_parses_from_many_threads_at_once_never_fail_and_give_the_same_tree():
    errors: list[BaseException] = []
    trees: list[str] = []

    def work() -> None:
        for _ in range(40):
            for _ in range(200):
                c = _Cycle()
                c.me = c  # type: ignore[attr-defined]
            try:
                trees.append(ast.dump(parse_python(SOURCE)))
            except SystemError as e:
                errors.append(e)

    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(50, 5, 5)
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
    assert errors == []
    assert len(trees) == 160 and set(trees) == {ast.dump(ast.parse(SOURCE))}
