"""ATTACK: hang while the module loads (top-level infinite loop), before policy() exists,
hoping the load step has no deadline."""

while True:
    pass


def policy(obs):
    return 0
