"""How a discrete observation decodes into named parts, as data in a description's ``[decode]``.

Taxi's 500 states are (row, col, passenger, destination) in mixed radix; FrozenLake's are (row,
col) on a published map. The description says so as data, so a generator can write
``row, col = state // 8, state % 8`` and rules over named places without naming an environment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scriptrl.errors import UserError

if TYPE_CHECKING:
    from scriptrl.envs.description import ObsComponent


@dataclass(frozen=True)
class DecodePart:
    """One named part of a discrete observation, a digit of its mixed-radix encoding."""

    name: str
    size: int
    axis: str | None = None  # a grid axis this part is the coordinate on ("row", "col")
    places: str | None = None  # the place list this part indexes (values past its end mean "none of them")


@dataclass(frozen=True)
class Place:
    name: str
    at: tuple[int, ...]  # coordinates on the axis parts, in the order the parts are listed


@dataclass(frozen=True)
class Decode:
    """How one integer observation splits into named parts: ``((a*size_b + b)*size_c + c)...``.

    Data, not code: it lets a generator write ``row, col = state // 8, state % 8`` and rules
    that compare parts with named places, without any generator naming an environment.
    """

    parts: tuple[DecodePart, ...]  # most significant first
    places: tuple[tuple[str, tuple[Place, ...]], ...] = ()  # named lists of grid places
    moves: tuple[tuple[str, tuple[int, ...]], ...] = ()  # action name -> change of each axis part
    grid: tuple[str, ...] = ()  # the map text, one string per row, where the environment publishes it
    avoid: str = ""  # grid characters of cells a path should not enter (holes)
    slip: float = 0.0  # probability a move goes sideways instead (split between the sideways moves)
    walls: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = ()  # adjacent cells with a wall between

    @property
    def n_states(self) -> int:
        return math.prod(p.size for p in self.parts)

    def place_list(self, name: str) -> tuple[Place, ...]:
        return dict(self.places).get(name, ())

    def axes(self) -> list[int]:
        """Indices of the parts that are grid coordinates."""
        return [i for i, p in enumerate(self.parts) if p.axis is not None]

    def split(self, state: int) -> tuple[int, ...]:
        """The part values of ``state`` (trusted side: generators use it to initialise tables)."""
        out = []
        for p in reversed(self.parts):
            out.append(state % p.size)
            state //= p.size
        return tuple(reversed(out))

    def expressions(self, obs: str) -> list[str]:
        """Python expressions reading each part from ``obs`` with ``//`` and ``%``."""
        out = []
        for i, p in enumerate(self.parts):
            below = math.prod(q.size for q in self.parts[i + 1 :])
            e = f"{obs} // {below}" if below > 1 else obs
            if i > 0:
                e = f"({e}) % {p.size}" if below > 1 else f"{e} % {p.size}"
            out.append(e)
        return out


# --- [decode] tables -------------------------------------------------------------------------


def _decode_error(file: str, problem: str) -> UserError:
    return UserError(f"description {file}: [decode] {problem}")


def _int_list(value: Any, n: int, file: str, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) != n or not all(type(v) is int for v in value):
        raise _decode_error(file, f"{where} must be a list of {n} integers, got {value!r}")
    return tuple(value)


def _decode_parts(raw: Any, file: str) -> tuple[DecodePart, ...]:
    if not isinstance(raw, list) or not raw:
        raise _decode_error(file, "needs parts = [{name = ..., size = ...}, ...] (most significant first)")
    parts = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) - {"name", "size", "axis", "places"}:
            raise _decode_error(file, f"parts[{i}] takes name, size and optional axis/places only")
        name, size = item.get("name"), item.get("size")
        if not isinstance(name, str) or not name.isidentifier() or type(size) is not int or size < 1:
            raise _decode_error(file, f"parts[{i}] needs an identifier name and a positive integer size")
        axis, places = item.get("axis"), item.get("places")
        if not all(v is None or isinstance(v, str) for v in (axis, places)):
            raise _decode_error(file, f"parts[{i}].axis and .places must be strings")
        parts.append(DecodePart(name, size, axis, places))
    if len({p.name for p in parts}) != len(parts):
        raise _decode_error(file, "part names must be unique")
    return tuple(parts)


def _decode_places(raw: Any, file: str, n_axes: int) -> tuple[tuple[str, tuple[Place, ...]], ...]:
    if not isinstance(raw, dict):
        raise _decode_error(file, "places must be a table of named lists: pads = [{name = ..., at = [...]}]")
    out = []
    for key, items in raw.items():
        if not isinstance(items, list) or not items:
            raise _decode_error(file, f"places.{key} must be a non-empty list")
        places = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or set(item) != {"name", "at"} or not isinstance(item["name"], str):
                raise _decode_error(file, f"places.{key}[{i}] needs exactly name and at")
            places.append(Place(item["name"], _int_list(item["at"], n_axes, file, f"places.{key}[{i}].at")))
        out.append((key, tuple(places)))
    return tuple(out)


def parse_decode(raw: Any, file: str, observation: list[ObsComponent], actions: list[str]) -> Decode:
    """A ``[decode]`` table; a malformed one is a one-line ``UserError`` naming the key to fix."""
    if not isinstance(raw, dict) or set(raw) - {"parts", "places", "moves", "grid", "avoid", "walls", "slip"}:
        raise _decode_error(file, "takes parts and optional places, moves, grid, avoid, walls and slip only")
    parts = _decode_parts(raw.get("parts"), file)
    axes = [p for p in parts if p.axis is not None]
    places = _decode_places(raw.get("places", {}), file, len(axes))
    decode = Decode(parts, places)
    for p in parts:
        if p.places is not None and p.places not in dict(places):
            raise _decode_error(file, f"part {p.name!r} refers to unknown places {p.places!r}")
        if p.places is not None and p.size < len(decode.place_list(p.places)):
            raise _decode_error(file, f"part {p.name!r} has fewer values than places.{p.places}")
    for key, plist in places:
        for pl in plist:
            if any(not 0 <= v < a.size for v, a in zip(pl.at, axes, strict=True)):
                raise _decode_error(file, f"place {key}.{pl.name} lies outside the grid")
    moves = raw.get("moves", {})
    if not isinstance(moves, dict) or set(moves) - set(actions):
        raise _decode_error(file, f"moves must map action names ({', '.join(actions)}) to axis changes")
    move_list = tuple((a, _int_list(d, len(axes), file, f"moves.{a}")) for a, d in moves.items())
    grid = raw.get("grid", [])
    if not isinstance(grid, list) or not all(isinstance(r, str) for r in grid):
        raise _decode_error(file, "grid must be a list of strings, one per row")
    if grid and (len(axes) != 2 or len(grid) != axes[0].size or any(len(r) != axes[1].size for r in grid)):
        raise _decode_error(file, "grid needs one string per row (first axis), each one cell per column")
    low, high = (observation[0].low, observation[0].high) if len(observation) == 1 else (None, None)
    if low is not None and high is not None and high - low + 1 != decode.n_states:
        n = int(high - low + 1)
        raise _decode_error(file, f"part sizes multiply to {decode.n_states}, not the {n} states")
    avoid = raw.get("avoid", "")
    if not isinstance(avoid, str) or (avoid and not grid):
        raise _decode_error(file, "avoid must be a string of grid characters (and needs a grid)")
    walls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    for i, pair in enumerate(raw.get("walls", [])):
        if not isinstance(pair, list) or len(pair) != 2:
            raise _decode_error(file, f"walls[{i}] must be a pair of cells [[row, col], [row, col]]")
        a, b = (_int_list(c, len(axes), file, f"walls[{i}]") for c in pair)
        walls.append((a, b))
    slip = raw.get("slip", 0.0)
    if isinstance(slip, bool) or not isinstance(slip, int | float) or not 0.0 <= slip < 1.0:
        raise _decode_error(file, f"slip must be a probability in [0, 1), got {slip!r}")
    walls_t = tuple(walls)
    return Decode(parts, places, move_list, tuple(grid), avoid, float(slip), walls_t)
