"""The embedded model in a child process, loading while the search already evaluates.

Loading a 1.5B model takes 5-20 s on a loaded two-core machine; started inside the search's own
process that time came before the first evaluation. Here ``ModelProcess`` starts llama.cpp's
server (``EmbeddedServer``) in a child Python process and returns at once; the child prints its
base URL on stdout when the model is loaded, and ``LazyBackend`` holds the first request (made
in the model lane's thread, never the search's) until then. The child ends when its stdin closes,
so it never outlives the run, even one killed with SIGKILL.

The child runs ``_serve(PATH ALIAS THREADS N_CTX SEED)``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from scriptrl.generators.llm.backends import CallError, Messages, OpenAIBackend, Redactor, Reply

#: Seconds a request waits for the model to load before it fails (a call, not the run).
LOAD_TIMEOUT_S = 600.0

#: The child's program: this very package first on its path (``-m`` would put the working
#: directory first, and a folder named scriptrl there would be imported instead).
_CHILD = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from scriptrl.generators.llm.model_process import _serve; sys.exit(_serve(sys.argv[1:]))"
)


class ModelProcess:
    """One child process serving one model file; ``close()`` (or the parent's exit) ends it."""

    def __init__(
        self,
        model_path: Path,
        alias: str,
        threads: int = 1,
        n_ctx: int = 4096,
        seed: int = 0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.model_path, self.alias = Path(model_path), alias
        self.threads, self.n_ctx, self.seed = max(1, int(threads)), int(n_ctx), int(seed)
        self.say = say or (lambda msg: None)
        self.base_url: str | None = None
        self.startup_s: float | None = None
        self.error: str | None = None
        self._ready = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    def start(self) -> ModelProcess:
        """Start loading in the background; returns at once."""
        t0 = time.monotonic()
        args = [str(self.model_path), self.alias, str(self.threads), str(self.n_ctx), str(self.seed)]
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(Path(__file__).parents[3]), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        threading.Thread(
            target=self._await_ready, args=(t0,), name="scriptrl-model-load", daemon=True
        ).start()
        return self

    def _await_ready(self, t0: float) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        line = proc.stdout.readline()
        try:
            self.base_url = json.loads(line)["base_url"]
            self.startup_s = time.monotonic() - t0
            self.say(
                f"scriptrl: embedded model {self.alias} ready on {self.base_url} ({self.threads} thread"
                f"{'s' if self.threads != 1 else ''}, {self.startup_s:.1f} s to load, beside the search)"
            )
        except (ValueError, KeyError, TypeError):
            self.error = f"the embedded model did not start: {self._tail()}"
            if self._proc is not None:  # not closed by the run before it had loaded
                self.say(f"scriptrl: {self.error}")
        self._ready.set()

    def _tail(self) -> str:
        try:
            self._log.seek(0)
            text = self._log.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            text = ""
        return text[-300:] or "no message"

    def wait(self, timeout: float = LOAD_TIMEOUT_S) -> str:
        """The base URL once the model is loaded; ``CallError`` if it failed or took too long."""
        if not self._ready.wait(timeout):
            raise CallError(f"the embedded model did not load within {timeout:.0f} s", False)
        if self.base_url is None:
            raise CallError(self.error or "the embedded model did not start", False)
        return self.base_url

    @property
    def ready(self) -> bool:
        return self.base_url is not None

    @property
    def running(self) -> bool:
        """Loading or serving: either way its threads keep a core busy."""
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        """End the child at once: it holds no state, and a request in flight is abandoned anyway."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe:
                pipe.close()
        self._ready.set()


class LazyBackend:
    """An OpenAI-compatible backend whose server is still loading: the first request waits."""

    def __init__(self, process: ModelProcess, timeout: float | None) -> None:
        self.process, self.timeout = process, timeout
        self.model = process.alias
        self._backend: OpenAIBackend | None = None
        self._lock = threading.Lock()

    def complete(self, messages: Messages, temperature: float, max_tokens: int, seed: int | None) -> Reply:
        with self._lock:
            if self._backend is None:
                url = self.process.wait()
                self._backend = OpenAIBackend(self.model, url, None, self.timeout, Redactor())
        return self._backend.complete(messages, temperature, max_tokens, seed)


def _serve(argv: list[str]) -> int:
    from scriptrl.generators.llm.embedded import EmbeddedServer

    path, alias, threads, n_ctx, seed = argv
    server = EmbeddedServer(Path(path), alias, threads=int(threads), n_ctx=int(n_ctx), seed=int(seed))
    url = server.start()
    print(json.dumps({"base_url": url, "startup_s": server.startup_s}), flush=True)
    sys.stdin.read()  # until the parent closes it or exits
    server.close()
    return 0
