"""ATTACK (compromised worker, Box action space): patch the worker's protocol module so each
reply holds a JSON integer with 400 digits as the action component. JSON allows it, it is
an int so it passes the type test, and math.isfinite() on it raises OverflowError in the
trusted checker."""

# scriptrl-hostile-env: Pendulum-v1
import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
sys = _sys

_proto = sys.modules["scriptrl.sandbox.protocol"]
_orig = _proto.write_frame


def _write(fd, header, payload=b""):
    if isinstance(header.get("a"), list):
        header = {"a": [{"t": "arr", "k": "i", "s": [1], "v": [10**400]} for _ in header["a"]]}
    return _orig(fd, header, payload)


_proto.write_frame = _write


def policy(obs):
    return [0.0]
