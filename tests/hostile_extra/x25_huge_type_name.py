"""ATTACK: return an instance of a class whose name is 2 MB long (built with type(), so no
dunder attribute is needed). The worker describes a non-numeric action by its type name,
so the name lands in the failure reason of every episode: a worker-controlled, unbounded
string in what the evaluation returns and stores."""

_Big = type("E" * (2 << 20), (), {})


def policy(obs):
    return _Big()
