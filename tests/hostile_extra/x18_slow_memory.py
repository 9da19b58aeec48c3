"""ATTACK: grow memory slowly - 48 MB more on every call, touched - hoping to take the host
down gradually rather than in one allocation a limit would catch. Must end in a contained
MemoryError (the address-space limit), reported as such."""

_hog = []


def policy(obs):
    _hog.append(b"x" * (48 << 20))
    return 0
