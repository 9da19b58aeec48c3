"""The offline generator: initial programs from the environment's spaces, AST mutation, crossover.

No model and no network: programs come from a handful of readable templates (threshold
and linear rules, argmax over linear scores, clipped linear maps, lookup tables) and
are changed by small syntax-tree operators. Temperature sets how far a step goes:
near 0 it perturbs one or two constants a little; towards 1.5 it perturbs more of them,
more strongly, and prefers structural edits (conditions added, removed or replaced,
branches swapped, components exchanged), sometimes two in a row.

Every child passes ``scriptrl.program.check_source``, compiles, binds every name it reads,
still returns an action, and differs from its parent after normalisation; otherwise the
operator is retried and, when nothing works, ``None`` is returned.
"""

from scriptrl.generators.offline.env_view import EnvView
from scriptrl.generators.offline.mutator import MAX_TABLE_STATES, OfflineMutator

#: The name ``tuning.ConstantTuner`` has imported since before the split.
_Env = EnvView

__all__ = ["MAX_TABLE_STATES", "EnvView", "OfflineMutator"]
