"""ATTACK (compromised worker): monkeypatch the worker's own modules through sys.modules -
numpy.asarray, json.dumps, the protocol encoder - so every reply carries claimed rewards
("reward", "ret", "returns", "terminated": false) and a duplicate reply frame that races
ahead of the next batch. The trusted side must count only validated actions."""

import statistics

import numpy as np

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
sys = _sys
json = _sys.modules["json"]

_proto = sys.modules["scriptrl.sandbox.protocol"]
_orig_encode = _proto.encode
_orig_dumps = json.dumps


def _encode(header, payload=b""):
    if isinstance(header.get("a"), list):
        header = dict(header, reward=1e9, ret=500.0, returns=[500.0] * 64, terminated=False, length=500)
        return _orig_encode(header, payload) + _orig_encode(header, payload)
    return _orig_encode(header, payload)


_proto.encode = _encode
np.asarray = lambda a, *args, **kw: np.array([0])
json.dumps = lambda obj, *a, **kw: _orig_dumps(obj, *a, **kw)
sys.modules["numpy"] = None


def policy(obs):
    return 0
