"""Stated properties and the observation box they are proved over.

A property is a Python expression over ``obs`` and ``action`` (parsed, never run), e.g.
``not (obs[6] and obs[7]) or action != 2``. It is proved for every observation in a
box: per component the user's range (``--range 3=-5:5``, or a properties file), else
the observation space's bound when it is finite (what the environment can produce),
else the range the environment's description states as typical (the space is
unbounded there, so the proof then covers only that range, and the output says so).
"""

from __future__ import annotations

import ast
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scriptrl.errors import UserError
from scriptrl.program.parsing import parse_python

PROPERTY_NAMES = frozenset(
    {
        "obs",
        "action",
        "np",
        "numpy",
        "math",
        "abs",
        "min",
        "max",
        "sum",
        "len",
        "any",
        "all",
        "int",
        "float",
        "bool",
        "range",
        "zip",
        "enumerate",
        "True",
        "False",
        "None",
    }
)


@dataclass(frozen=True)
class Property:
    name: str
    expr: str
    ranges: tuple[tuple[int, float, float], ...] = ()


@dataclass(frozen=True)
class Bound:
    component: int
    low: float
    high: float
    source: str  # user | space | description
    integer: bool = False

    def to_dict(self) -> dict:
        return {"component": self.component, "low": self.low, "high": self.high, "from": self.source}


@dataclass
class PropertySet:
    properties: list[Property] = field(default_factory=list)
    ranges: tuple[tuple[int, float, float], ...] = ()


def check_expression(expr: str, what: str) -> None:
    """A one-line error for a property that is not an expression over obs and action."""
    try:
        tree = parse_python(expr, mode="eval")
    except SyntaxError as e:
        raise UserError(
            f'{what} {expr!r} is not a Python expression: {e.msg} (write e.g. "action != 2")'
        ) from None
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for comp in (n for n in ast.walk(tree) if isinstance(n, ast.comprehension)):
        bound |= {t.id for t in ast.walk(comp.target) if isinstance(t, ast.Name)}
    unknown = sorted(names - PROPERTY_NAMES - bound)
    if unknown:
        raise UserError(
            f"{what} {expr!r} uses {unknown[0]!r}; a property may name only obs, action, np and math"
        )
    if "obs" not in names and "action" not in names:
        raise UserError(f"{what} {expr!r} names neither obs nor action, so it says nothing about the policy")


def parse_range(text: str) -> tuple[int, float, float]:
    """``3=-5:5`` -> (3, -5.0, 5.0)."""
    try:
        comp, span = text.split("=", 1)
        lo, hi = span.split(":", 1)
        out = (int(comp), float(lo), float(hi))
    except ValueError:
        raise UserError(f"--range {text!r} is not COMPONENT=LOW:HIGH (e.g. --range 3=-5:5)") from None
    return _checked_range(out, f"--range {text}")


def _checked_range(r: tuple[int, float, float], what: str) -> tuple[int, float, float]:
    comp, lo, hi = r
    if comp < 0 or not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise UserError(f"{what}: need a component >= 0 and finite LOW <= HIGH")
    return r


def _ranges_table(table: Any, what: str) -> tuple[tuple[int, float, float], ...]:
    if table is None:
        return ()
    if not isinstance(table, dict):
        raise UserError(f'{what}: ranges must be a table like {{ "3" = [-5, 5] }}')
    out = []
    for k, v in table.items():
        if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int | float) for x in v)):
            raise UserError(f"{what}: range of component {k} must be [low, high]")
        try:
            comp = int(k)
        except ValueError:
            raise UserError(f"{what}: range key {k!r} must be a component number") from None
        out.append(_checked_range((comp, float(v[0]), float(v[1])), f"{what} component {k}"))
    return tuple(out)


def load_properties(path: str | Path) -> PropertySet:
    """A TOML file: optional top-level [ranges], then [[property]] tables with name, expr, optional ranges."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"properties file not found: {p}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"{p} is not a readable TOML properties file: {e}") from None
    items = data.get("property")
    if not isinstance(items, list) or not items:
        raise UserError(f'{p} has no [[property]] tables (each needs name = "..." and expr = "...")')
    props = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("expr"), str):
            raise UserError(f'{p}: property {i} needs expr = "..." (a Python expression over obs and action)')
        name = str(item.get("name") or item["expr"])
        check_expression(item["expr"], f"{p}: property {name!r}")
        props.append(
            Property(name, item["expr"], _ranges_table(item.get("ranges"), f"{p}: property {name!r}"))
        )
    return PropertySet(props, _ranges_table(data.get("ranges"), f"{p}: [ranges]"))


def observation_box(
    space: Any, description: Any, ranges: tuple[tuple[int, float, float], ...]
) -> list[Bound]:
    """Per component: the user's range, the space's finite bound, or the description's typical range."""
    import numpy as np
    from gymnasium import spaces

    user = {c: (lo, hi) for c, lo, hi in ranges}
    if isinstance(space, spaces.Discrete):
        lo, hi = int(space.start), int(space.start + space.n - 1)
        if 0 in user:
            lo, hi = max(lo, math.ceil(user[0][0])), min(hi, math.floor(user[0][1]))
        return [Bound(0, float(lo), float(hi), "user" if 0 in user else "space", integer=True)]
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise UserError(f"proofs need a flat Box or Discrete observation space (this one is {space})")
    low, high = np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64)
    integer = np.dtype(space.dtype).kind in "iu"
    comps = getattr(description, "observation", ()) or ()
    bad = sorted(set(user) - set(range(low.size)))
    if bad:
        raise UserError(f"--range {bad[0]}: the observation has components 0..{low.size - 1}")
    out = []
    for i in range(low.size):
        if i in user:
            out.append(Bound(i, user[i][0], user[i][1], "user", integer))
        elif math.isfinite(low[i]) and math.isfinite(high[i]):
            out.append(Bound(i, float(low[i]), float(high[i]), "space", integer))
        elif len(comps) == low.size and comps[i].low is not None and comps[i].high is not None:
            c_lo = max(float(comps[i].low), float(low[i]))
            c_hi = min(float(comps[i].high), float(high[i]))
            out.append(Bound(i, c_lo, c_hi, "description", integer))
        else:
            raise UserError(
                f"obs[{i}] is unbounded and the description states no range for it; "
                f"give one with --range {i}=LOW:HIGH"
            )
    return out
