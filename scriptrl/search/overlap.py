"""Keeping the evaluators busy while a slow generator writes.

A language model on one CPU thread takes seconds to tens of seconds per program, and an
evaluator pool that waits for it idles a core. Here the generator runs in one writer
thread and hands candidates over as they are written; the search's thread considers each
one as it arrives and, while nothing is waiting, does other useful work (constant tuning).
Everything that touches the run store stays on the search's thread: the writer only
produces source text.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

#: ``produce(emit, stopped)``: call ``emit(item)`` per candidate; start no new call once ``stopped()``.
Producer = Callable[[Callable[[Any], None], Callable[[], bool]], None]


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def overlapped(
    produce: Producer,
    consume: Callable[[Any], None],
    idle: Callable[[], bool],
    should_stop: Callable[[], bool],
) -> None:
    """Run ``produce`` in a writer thread; ``consume`` each item on this thread in arrival
    order; call ``idle()`` while none is waiting (it returns False when it has nothing to
    do, and this thread then blocks on the writer). Once ``should_stop()`` is true the writer
    starts no new call, but what it already wrote is still consumed: a paid call is stored."""
    items: queue.Queue = queue.Queue()
    stop = threading.Event()
    end = object()

    def writer() -> None:
        try:
            produce(items.put, stop.is_set)
        except BaseException as e:  # noqa: BLE001 - re-raised on the search's thread
            items.put(_Raised(e))
        finally:
            items.put(end)

    thread = threading.Thread(target=writer, name="scriptrl-writer", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = items.get_nowait()
            except queue.Empty:
                if stop.is_set() or not idle():
                    item = items.get()
                else:
                    if should_stop():
                        stop.set()
                    continue
            if item is end:
                break
            if isinstance(item, _Raised):
                raise item.error
            consume(item)
            if should_stop():
                stop.set()
    finally:
        stop.set()
    thread.join()
