"""The wire format between the trusted evaluator and a sandbox worker.

A frame is ``!II`` (header length, payload length), a JSON header and a raw payload.
JSON and raw bytes only: the trusted side never unpickles anything a worker sends,
and it bounds every length before reading, because the worker can write anything to
its own channel.
"""

from __future__ import annotations

import json
import os
import struct

_PREFIX = struct.Struct("!II")
MAX_HEADER = 8 * 1024 * 1024
MAX_PAYLOAD = 64 * 1024 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not a well-formed frame."""


def encode(header: dict, payload: bytes = b"") -> bytes:
    h = json.dumps(header, separators=(",", ":")).encode()
    return _PREFIX.pack(len(h), len(payload)) + h + payload


def write_frame(fd: int, header: dict, payload: bytes = b"") -> None:
    data = memoryview(encode(header, payload))
    while data:
        n = os.write(fd, data)
        data = data[n:]


def read_exact(fd: int, n: int) -> bytes:
    """Blocking read used by the worker; EOF means the evaluator is gone."""
    chunks = []
    while n:
        b = os.read(fd, n)
        if not b:
            raise EOFError("channel closed")
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def read_frame(fd: int) -> tuple[dict, bytes]:
    hlen, plen = _PREFIX.unpack(read_exact(fd, _PREFIX.size))
    header = json.loads(read_exact(fd, hlen))
    payload = read_exact(fd, plen) if plen else b""
    return header, payload


class FrameReader:
    """Incremental, bounded frame parser for the trusted side (fed from non-blocking reads)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> None:
        self.buf += data

    def next_frame(self) -> tuple[dict, bytes] | None:
        if len(self.buf) < _PREFIX.size:
            return None
        hlen, plen = _PREFIX.unpack_from(self.buf)
        if hlen > MAX_HEADER or plen > MAX_PAYLOAD:
            raise ProtocolError(f"frame too large ({hlen} + {plen} bytes)")
        end = _PREFIX.size + hlen + plen
        if len(self.buf) < end:
            return None
        try:
            header = json.loads(bytes(self.buf[_PREFIX.size : _PREFIX.size + hlen]))
        except (ValueError, UnicodeDecodeError, RecursionError) as e:  # a nesting bomb is malformed too
            raise ProtocolError(f"malformed header: {type(e).__name__}") from None
        if not isinstance(header, dict):
            raise ProtocolError("header is not an object")
        payload = bytes(self.buf[_PREFIX.size + hlen : end])
        del self.buf[:end]
        return header, payload
