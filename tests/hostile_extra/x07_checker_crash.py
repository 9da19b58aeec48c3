"""ATTACK (compromised worker): patch the worker's own protocol module so every reply
carries well-formed JSON actions whose fields have the wrong types
({"t": "arr", "s": 5} - a shape that is not a list). The trusted action checker must turn
them into "invalid action", not crash while describing them."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
sys = _sys

_proto = sys.modules["scriptrl.sandbox.protocol"]
_orig = _proto.write_frame


def _write(fd, header, payload=b""):
    if isinstance(header.get("a"), list):
        header = {"a": [{"t": "arr", "k": "f", "s": 5, "v": [0]} for _ in header["a"]]}
    return _orig(fd, header, payload)


_proto.write_frame = _write


def policy(obs):
    return 0
