"""Distillation: a neural baseline's network turned into a readable oblique decision tree program.

``teacher`` (the exported network, parsed, never executed), ``rollouts`` (episodes played in
this process by trusted batch policies), ``tree`` (weighted oblique CART in numpy), ``dagger``
(imitation on the states the student visits, VIPER-weighted), ``tune`` (CMA-ES on the tree's
numbers), ``render`` (the program with named observations) and ``pipeline`` (``distill_run``,
behind ``scriptrl distill``). Needs only numpy: the teacher is rebuilt from the exported
program, so neither torch nor Stable-Baselines3 is imported.
"""

from __future__ import annotations

from scriptrl.distill.pipeline import DistillResult, DistillSettings, distill_run

__all__ = ["DistillResult", "DistillSettings", "distill_run"]
