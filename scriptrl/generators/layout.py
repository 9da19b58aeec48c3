"""What the numbers a policy reads and returns are, in the form program generators need.

``EnvLayout`` flattens an environment's observation into named components (with a
Python identifier, the expression that reads it from ``obs``, and a typical range) and
its action space into the values or bounds a program may return. Ranges come from the
curated description when there is one (gymnasium's own bounds are often +-inf), then
from finite space bounds, then a fallback of -1..1.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
import re
from dataclasses import dataclass
from typing import SupportsFloat

import numpy as np
from gymnasium import spaces

from scriptrl.envs.decode import Decode
from scriptrl.errors import UserError
from scriptrl.program.parsing import parse_python

#: Names generated programs use for their own variables; component names must not shadow them.
RESERVED = frozenset(
    {
        "obs",
        "score",
        "scores",
        "TABLE",
        "ACTIONS",
        "math",
        "numpy",
        "np",
        "self",
        "policy",
        "Policy",
        "action",
    }
)
#: Above this many components, programs read ``obs[k]`` directly instead of naming every one.
MAX_NAMED_COMPONENTS = 32


@dataclass(frozen=True)
class Component:
    """One number in the observation."""

    name: str  # the description's name
    var: str  # a Python identifier for it
    access: str  # how to read it, with {obs} for the observation parameter, e.g. "{obs}[2]"
    index: int | None  # k when it is read as obs[k] (vector observations, tuples of scalars)
    lo: float
    hi: float
    unit: str
    integer: bool

    @property
    def scale(self) -> float:
        """Half the typical range: the size of a typical deviation from the centre."""
        half = (self.hi - self.lo) / 2.0
        return half if half > 1e-9 else 1.0

    def read(self, obs: str = "obs") -> str:
        return self.access.format(obs=obs)

    def describe(self) -> str:
        """Short comment text: unit and typical range."""
        parts = [self.unit] if self.unit else []
        parts.append(f"typical {_g(self.lo)}..{_g(self.hi)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class EnvLayout:
    env_id: str
    obs_kind: str  # "vector" | "tuple" | "discrete"
    components: tuple[Component, ...]
    n_states: int | None  # number of states of a Discrete observation
    state_meaning: str
    action_kind: str  # "discrete" | "box"
    actions: tuple[int, ...]  # valid discrete actions
    action_names: tuple[str, ...]  # one per discrete action, or one per box dimension
    action_vars: tuple[str, ...]  # identifiers, one per action name
    box_shape: tuple[int, ...]
    box_low: tuple[float | None, ...]
    box_high: tuple[float | None, ...]
    #: How a Discrete observation splits into named parts; then ``components`` are those parts.
    decode: Decode | None = None
    #: (position, velocity) component positions the description pairs with ``rate_of``.
    rate_pairs: tuple[tuple[int, int], ...] = ()

    @property
    def named(self) -> bool:
        """Whether programs give every component its own variable."""
        return len(self.components) <= MAX_NAMED_COMPONENTS

    def ref(self, comp: Component, obs: str = "obs") -> str:
        """How generated code refers to a component: its variable when named, else the read expression."""
        return comp.var if self.named else comp.read(obs)

    def by_index(self, k: int) -> Component | None:
        for c in self.components:
            if c.index == k:
                return c
        return None

    def action_named(self, name: str) -> int | None:
        """The discrete action a description calls ``name``."""
        for a, n in zip(self.actions, self.action_names, strict=True):
            if n == name:
                return a
        return None

    def action_legend(self) -> str:
        if self.action_kind == "discrete":
            return "Actions: " + ", ".join(
                f"{a} {n}" for a, n in zip(self.actions, self.action_names, strict=True)
            )
        dims = []
        for n, lo, hi in zip(self.action_names, self.box_low, self.box_high, strict=True):
            rng = f" in [{_g(lo)}, {_g(hi)}]" if lo is not None and hi is not None else ""
            dims.append(f"{n}{rng}")
        return "Action: [" + ", ".join(dims) + "]"


def _g(x: float | None) -> str:
    return "?" if x is None else f"{x:g}"


def _finite(x: SupportsFloat, limit: float = 1e6) -> float | None:
    x = float(x)
    return x if math.isfinite(x) and abs(x) < limit else None


def identifier(name: str, taken: set[str]) -> str:
    """A readable, unique Python identifier for ``name`` (added to ``taken``)."""
    var = re.sub(r"\W+", "_", name.strip().lower()).strip("_") or "value"
    if var[0].isdigit():
        var = "v_" + var
    if keyword.iskeyword(var) or var in RESERVED or var in dir(builtins):
        var += "_"
    base, i = var, 2
    while var in taken:
        var = f"{base}_{i}"
        i += 1
    taken.add(var)
    return var


# (access, index, lo, hi, integer) of one observation component, straight from the space
_RawComponent = tuple[str, int | None, float | None, float | None, bool]


def _raw_components(space: spaces.Space) -> tuple[str, list[_RawComponent]]:
    """(kind, [(access, index, lo, hi, integer)]) straight from the space."""
    if isinstance(space, spaces.Discrete):
        lo = int(space.start)
        return "discrete", [("{obs}", None, float(lo), float(lo + int(space.n) - 1), True)]
    if isinstance(space, spaces.Box):
        integer = space.dtype.kind in "iu"
        low, high = space.low, space.high
        if len(space.shape) == 0:
            return "vector", [("{obs}", None, _finite(low), _finite(high), integer)]
        if len(space.shape) == 1:
            return "vector", [
                (f"{{obs}}[{k}]", k, _finite(low[k]), _finite(high[k]), integer)
                for k in range(space.shape[0])
            ]
        out: list[_RawComponent] = []
        for flat, idx in enumerate(np.ndindex(*space.shape)):
            access = "{obs}[" + ", ".join(str(i) for i in idx) + "]"
            out.append((access, None, _finite(low.ravel()[flat]), _finite(high.ravel()[flat]), integer))
        return "vector", out
    if isinstance(space, spaces.MultiBinary | spaces.MultiDiscrete) and len(space.shape) == 1:
        if isinstance(space, spaces.MultiBinary):
            return "vector", [(f"{{obs}}[{k}]", k, 0.0, 1.0, True) for k in range(space.shape[0])]
        nvec, start = np.asarray(space.nvec).ravel(), np.asarray(space.start).ravel()
        return "vector", [
            (f"{{obs}}[{k}]", k, float(s), float(s + n - 1), True)
            for k, (n, s) in enumerate(zip(nvec, start, strict=True))
        ]
    if isinstance(space, spaces.Tuple):
        out = []
        for i, sub in enumerate(space.spaces):
            if isinstance(sub, spaces.Discrete):
                lo = int(sub.start)
                out.append((f"{{obs}}[{i}]", i, float(lo), float(lo + int(sub.n) - 1), True))
            elif isinstance(sub, spaces.Box) and len(sub.shape) <= 1:
                if len(sub.shape) == 0:
                    out.append(
                        (f"{{obs}}[{i}]", i, _finite(sub.low), _finite(sub.high), sub.dtype.kind in "iu")
                    )
                    continue
                for j in range(sub.shape[0]):
                    out.append(
                        (
                            f"{{obs}}[{i}][{j}]",
                            None,
                            _finite(sub.low[j]),
                            _finite(sub.high[j]),
                            sub.dtype.kind in "iu",
                        )
                    )
            else:
                raise UserError(
                    f"the offline generator cannot read a {type(sub).__name__} inside a Tuple observation"
                )
        return "tuple", out
    raise UserError(
        f"the offline generator cannot write programs for {type(space).__name__} observations "
        "(supported: Box, Discrete, Tuple of Discrete/Box, MultiBinary, MultiDiscrete)"
    )


def build_layout(description, observation_space: spaces.Space, action_space: spaces.Space) -> EnvLayout:
    """Combine an ``EnvDescription`` with the real spaces."""
    kind, raw = _raw_components(observation_space)
    desc_obs = list(description.observation)
    use_desc = len(desc_obs) == len(raw)
    taken: set[str] = set()
    comps = []
    decode = _usable_decode(description, observation_space)
    if decode is not None:
        raw = []  # the parts replace the one "state" component
    for k, (access, index, lo, hi, integer) in enumerate(raw):
        d = desc_obs[k] if use_desc else None
        name = d.name if d is not None else (f"obs_{k}" if len(raw) > 1 else "obs_value")
        if d is not None and d.low is not None and d.high is not None:
            lo, hi = d.low, d.high
        if lo is None or hi is None or hi <= lo:
            lo, hi = (lo, lo + 2.0) if lo is not None else ((hi - 2.0, hi) if hi is not None else (-1.0, 1.0))
        var = identifier(name, taken)
        comps.append(Component(name, var, access, index, float(lo), float(hi), d.unit if d else "", integer))
    if decode is not None:
        comps += _decoded_components(decode, taken)
    pairs = _rate_pairs(desc_obs, comps) if use_desc and decode is None else ()
    n_states = int(observation_space.n) if isinstance(observation_space, spaces.Discrete) else None
    state_meaning = desc_obs[0].meaning if (kind == "discrete" and desc_obs) else ""

    desc_act = list(description.actions)
    if isinstance(action_space, spaces.Discrete):
        start, n = int(action_space.start), int(action_space.n)
        actions = tuple(range(start, start + n))
        names = (
            tuple(a.name for a in desc_act) if len(desc_act) == n else tuple(f"action_{a}" for a in actions)
        )
        vars_ = tuple(identifier("score_" + nm, taken) for nm in names)
        return EnvLayout(
            description.id,
            kind,
            tuple(comps),
            n_states,
            state_meaning,
            "discrete",
            actions,
            names,
            vars_,
            (),
            (),
            (),
            decode,
            pairs,
        )
    if isinstance(action_space, spaces.Box):
        shape = tuple(int(d) for d in action_space.shape)
        size = int(np.prod(shape)) if shape else 1
        names = (
            tuple(a.name for a in desc_act)
            if len(desc_act) == size
            else tuple(f"action_{i}" for i in range(size))
        )
        vars_ = tuple(identifier(nm, taken) for nm in names)
        low = tuple(_finite(x) for x in np.asarray(action_space.low, dtype=np.float64).ravel())
        high = tuple(_finite(x) for x in np.asarray(action_space.high, dtype=np.float64).ravel())
        return EnvLayout(
            description.id,
            kind,
            tuple(comps),
            n_states,
            state_meaning,
            "box",
            (),
            names,
            vars_,
            shape,
            low,
            high,
            decode,
            pairs,
        )
    raise UserError(
        f"the offline generator supports Discrete and Box action spaces, not {type(action_space).__name__}"
    )


def _decoded_components(decode: Decode, taken: set[str]) -> list[Component]:
    """One integer component per decoded part, read with ``//`` and ``%``."""
    comps = []
    for part, expr in zip(decode.parts, decode.expressions("obs"), strict=True):
        var = identifier(part.name, taken)
        # Written the way ast.unparse renders it, so rendered programs match it again.
        expr = ast.unparse(parse_python(expr, mode="eval")).replace("obs", "{obs}")
        comps.append(Component(part.name, var, expr, None, 0.0, float(part.size - 1), "", True))
    return comps


def _usable_decode(description, observation_space: spaces.Space) -> Decode | None:
    """The description's decode table, when it fits this Discrete space exactly."""
    decode = getattr(description, "decode", None)
    if decode is None or not isinstance(observation_space, spaces.Discrete):
        return None
    if int(observation_space.start) != 0 or decode.n_states != int(observation_space.n):
        return None
    return decode


def _rate_pairs(desc_obs, comps: list[Component]) -> tuple[tuple[int, int], ...]:
    pos = {c.name: i for i, c in enumerate(comps)}
    return tuple(
        (pos[d.rate_of], i)
        for i, d in enumerate(desc_obs)
        if getattr(d, "rate_of", None) is not None and d.rate_of in pos
    )


_CACHE: dict[tuple, EnvLayout] = {}


def layout_for(ctx) -> EnvLayout:
    """The layout of a ``GenContext`` (cached per environment and spaces)."""
    key = (
        ctx.env.id,
        repr(ctx.env.kwargs),
        ctx.env.description.id,
        repr(ctx.observation_space),
        repr(ctx.action_space),
    )
    found = _CACHE.get(key)
    if found is None:
        found = build_layout(ctx.env.description, ctx.observation_space, ctx.action_space)
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[key] = found
    return found
