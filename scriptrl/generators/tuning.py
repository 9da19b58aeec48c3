"""Tuning a program's numeric constants with CMA-ES, keeping its structure.

Which numbers are tuned (see ``astutil.numeric_sites`` for the full rule): every float
literal except indices, clip bounds and f-string parts, and ints that are operands of
``+ - * /`` or of a comparison (``player_sum >= 17``). Never tuned: subscript indices
(``obs[2]``), ``range()`` arguments, returned action values (``return 1``,
``return 1 if s > 0 else 0``, ``action = 2 ... return action``), lookup-table entries,
clip bounds (``min(max(x, lo), hi)``, ``np.clip``: they are the action bounds), and
other ints such as ``round(x, 2)`` or ``[0.0] * 4``, and numbers that cannot change an action
(``ast_live``: code that never runs or whose result nothing reads, overridden defaults, the
test of a branch whose two sides do the same). ``MAX_TUNED`` caps how many of what is left
one tuning round varies.

The tuning itself (CMA-ES rounds raced on fresh episodes) lives in ``scriptrl.search.cmaes``
and ``scriptrl.search.tuning_campaign``; this module says which numbers it may vary, reads and
writes them, and gives their step floors.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scriptrl.generators import astutil as au
from scriptrl.generators.base import GenContext

if TYPE_CHECKING:
    from scriptrl.generators.offline.env_view import EnvView

#: At most this many constants are tuned in one call (chosen by the rng when there are more).
MAX_TUNED = 40


def _tunable(source: str) -> tuple[au.Analysis, list[int]]:
    """The analysis and the indices of the sites tuning varies: numbers that can change an
    action (not indices, actions, tables, clip bounds, nor inert numbers: see ``ast_live``)."""
    an = au.Analysis.of(source)
    return an, [i for i, s in enumerate(an.sites) if s.role == "tunable"]


def extract_constants(source: str) -> list[float]:
    """The tunable numeric literals of ``source``, in AST order (signed; ints as ints)."""
    an, idx = _tunable(source)
    return [an.sites[i].value for i in idx]


def with_constants(source: str, values: Sequence[float]) -> str:
    """``source`` with its tunable constants replaced by ``values``; all other text is kept."""
    an, idx = _tunable(source)
    if len(values) != len(idx):
        raise ValueError(f"expected {len(idx)} values for the program's tunable constants, got {len(values)}")
    return au.write_numbers(source, an, {i: float(v) for i, v in zip(idx, values, strict=True)})


#: A constant's step floor, as a fraction of its typical size (``EnvView.site_scale``).
FLOOR_FRACTION = 0.5
#: The floor of a zero weight on a reading, as a fraction of that weight's typical size.
ZERO_WEIGHT_FRACTION = 1.0


class ConstantTuner:
    """The environment-aware step sizes the search's CMA-ES tuning uses ("cma")."""

    name = "cma"

    def scales(self, ctx: GenContext, source: str) -> list[float]:
        """Per-constant step floors from the environment: a component's range for thresholds on
        it, the inverse of its range for a weight on it.

        A weight of exactly zero on a reading gets the whole typical size, not half: a zero is a
        neutral start (the dense feedback law starts every weight there), it has no size of its
        own for the campaign's ``max(|v|, floor)`` to use, and CMA-ES from all zeros needed steps
        of about one weight unit per unit of reading (RESULTS.md, stop 22: unit steps took the
        continuous lander's law from zero to holdout 226 in 240 s). Other families' weights are
        random draws, never exactly zero, so their steps do not change.
        """
        from scriptrl.generators.layout import layout_for
        from scriptrl.generators.offline import _Env

        env = _Env(layout_for(ctx))
        an = env.analyze(source)
        return [
            (ZERO_WEIGHT_FRACTION if s.value == 0 and _weighs_reading(env, an, s) else FLOOR_FRACTION)
            * env.site_scale(an, s)
            for s in an.sites
            if s.role == "tunable"
        ]


def _weighs_reading(env: EnvView, an: au.Analysis, site: au.Site) -> bool:
    """``site`` multiplies a reading of the observation (``w * x``)."""
    p = site.parent
    if not isinstance(p, ast.BinOp) or not isinstance(p.op, ast.Mult):
        return False
    other = p.right if p.left is site.node else p.left
    return env.comp_of(an, other) is not None
