"""The offline default: llama.cpp's HTTP server, run in a child process by ``model_process``.

``xllamacpp`` embeds llama.cpp's own server, which speaks the OpenAI chat-completions API,
so the embedded model is reached through exactly the same client as a served one: nothing
in the generator knows which it talks to. It listens on 127.0.0.1 only, on a free port,
and uses one thread by default so that a two-core machine keeps a core for evaluation (two
threads under evaluation load ran 10-25 times slower when measured). Generated programs
never run here; the server only produces text. A run starts it through ``ModelProcess``, so the
model loads beside the search instead of before it.
"""

from __future__ import annotations

import atexit
import gc
import socket
import threading
import time
from pathlib import Path

from scriptrl.errors import UserError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedServer:
    """One llama.cpp server for one model file; ``close()`` (or interpreter exit) stops it."""

    def __init__(
        self, model_path: Path, alias: str, threads: int = 1, n_ctx: int = 4096, seed: int = 0
    ) -> None:
        self.model_path = Path(model_path)
        self.alias = alias
        self.threads = max(1, int(threads))
        self.n_ctx = int(n_ctx)
        self.seed = int(seed)
        self._server = None
        self._lock = threading.Lock()
        self.base_url: str | None = None
        self.startup_s: float | None = None

    def start(self) -> str:
        """Load the model and return the OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``)."""
        with self._lock:
            if self._server is not None:
                return self.base_url
            try:
                import xllamacpp
            except ImportError:
                raise UserError(
                    "the embedded model needs xllamacpp: pip install 'scriptrl[llm]' "
                    "(or serve a model and pass --base-url)"
                ) from None
            t0 = time.monotonic()
            last: Exception | None = None
            for _ in range(3):  # a free port can be taken between choosing it and binding it
                params = xllamacpp.CommonParams()
                params.model.path = str(self.model_path)
                params.model_alias = {self.alias}
                params.n_ctx = self.n_ctx
                params.n_parallel = 1
                params.hostnames = ["127.0.0.1"]
                params.port = free_port()
                params.cpuparams.n_threads = self.threads
                params.cpuparams_batch.n_threads = self.threads
                params.sampling.seed = self.seed
                params.verbosity = -1  # llama.cpp logs every request to stderr otherwise
                try:
                    server = xllamacpp.Server(params)
                except Exception as e:  # xllamacpp raises RuntimeError or ValueError by version
                    last = e
                    continue
                self._server = server
                self.base_url = server.listening_address.rstrip("/") + "/v1"
                self.startup_s = time.monotonic() - t0
                atexit.register(self.close)
                return self.base_url
            raise UserError(
                f"the embedded model server did not start ({type(last).__name__}: {last}); "
                "check the model file with `scriptrl model pull`"
            ) from None

    def close(self) -> None:
        """Stop the server: llama.cpp's destructor joins its threads and frees the model."""
        with self._lock:
            server, self._server = self._server, None
            self.base_url = None
        if server is not None:
            del server
            gc.collect()
        try:
            atexit.unregister(self.close)
        except Exception:  # pragma: no cover
            pass

    @property
    def running(self) -> bool:
        return self._server is not None
