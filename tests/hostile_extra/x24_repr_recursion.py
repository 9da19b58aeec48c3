"""ATTACK: return objects whose every conversion recurses forever (__repr__, __str__,
__index__, __float__, __len__, __iter__) and raise exceptions whose __str__ recurses, so the
worker or the evaluator overflows its stack while describing the failure."""


class Loop:
    def __repr__(self):
        return repr(self)

    def __str__(self):
        return str(self)

    def __index__(self):
        return int(self)

    def __int__(self):
        return int(self)

    def __float__(self):
        return float(self)

    def __len__(self):
        return len(self)

    def __iter__(self):
        return iter(self)


class LoopError(Exception):
    def __str__(self):
        return str(self)


_n = [0]


def policy(obs):
    _n[0] += 1
    if _n[0] % 3 == 0:
        raise LoopError()
    if _n[0] % 3 == 1:
        return [Loop()]
    return Loop()
