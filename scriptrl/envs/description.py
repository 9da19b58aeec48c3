"""What an environment means, in words a person or a language model can act on.

Gymnasium's spaces say *how many* numbers an observation has; a policy writer also
needs to know *which* number is the pole angle, in what unit, and what range it
really takes. That knowledge lives in curated TOML files next to this module (data,
not code, so it can be reviewed and corrected without touching logic). This module
deliberately does not import gymnasium: describing an environment must not require
building one.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from scriptrl.errors import UserError

OBSERVATION_KINDS = ("vector", "discrete", "tuple")
ACTION_KINDS = ("discrete", "continuous")
_WHOLE_KINDS = ("discrete", "image", "array")

# "none" is how a curated file says "gymnasium defines no limit/threshold"; TOML has no null.
_NONE = "none"
_REQUIRED_KEYS = {
    "id": str,
    "title": str,
    "summary": str,
    "observation_kind": str,
    "action_kind": str,
    "reward": str,
    "termination": str,
    "threshold_source": str,
    "observation": list,
    "actions": list,
}
# make: default gymnasium.make options; imports: modules that register the id (a third-party package)
_OPTIONAL_KEYS = {"source": str, "decode": dict, "make": dict, "imports": list}
_NULLABLE_KEYS = ("time_limit", "solved_threshold")
# Episode success (issue 17) is parsed on the `success` branch; until it merges these keys are
# accepted and ignored here so descriptions can already state it. The integrator reconciles.
_PENDING_KEYS = {"success": str, "success_text": str}


@dataclass(frozen=True)
class ObsComponent:
    """One entry of the observation, with the range it typically takes (not the space's inf bounds)."""

    name: str
    meaning: str
    unit: str
    low: float | None
    high: float | None
    rate_of: str | None = None  # the component this one is the rate of change of (velocity of a position)


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


@dataclass(frozen=True)
class ActionInfo:
    """One discrete action, or one dimension of a continuous action (its range goes in ``meaning``)."""

    name: str
    meaning: str


@dataclass(frozen=True)
class EnvDescription:
    """Everything a policy author needs to know about an environment, independent of gymnasium objects."""

    id: str
    title: str
    summary: str
    observation_kind: str
    observation: tuple[ObsComponent, ...]
    action_kind: str
    actions: tuple[ActionInfo, ...]
    reward: str
    termination: str
    time_limit: int | None
    solved_threshold: float | None
    generated: bool = False
    decode: Decode | None = None
    # Make-time options this description assumes (e.g. the observation type it documents),
    # applied under the user's own --env-option values: see scriptrl/envs/options.py.
    make: tuple[tuple[str, Any], ...] = ()
    imports: tuple[str, ...] = ()

    def to_prompt(self) -> str:
        """Render as plain text, indexed exactly the way a policy program will index ``obs`` and actions."""
        lines = [f"Environment: {self.id} - {self.title}", "", self.summary, ""]
        # A discrete state or an image is one value, not something a policy indexes into.
        whole = len(self.observation) == 1 and self.observation_kind in _WHOLE_KINDS
        lines.append(f"Observation ({self.observation_kind}, {_count(len(self.observation), 'component')}):")
        # Generated components are already named by their access path (obs[1][0], obs['pos']).
        range_word = "range" if self.generated else "typical range"
        for i, comp in enumerate(self.observation):
            if comp.name.startswith("obs"):
                where = comp.name
            elif whole:
                where = f"obs ({comp.name})"
            else:
                where = f"obs[{i}] {comp.name}"
            lines.append(f"  {where}: {comp.meaning}{_unit_and_range(comp, range_word)}")
        if self.decode is not None:
            reads = zip(self.decode.parts, self.decode.expressions("obs"), strict=True)
            lines.append("  decoded: " + ", ".join(f"{p.name} = {e}" for p, e in reads))
        lines.append(f"Actions ({self.action_kind}, {_count(len(self.actions), 'action')}):")
        for i, act in enumerate(self.actions):
            where = f"{i}" if self.action_kind == "discrete" else f"action[{i}]"
            lines.append(f"  {where} {act.name}: {act.meaning}")
        lines.append(f"Reward: {self.reward}")
        lines.append(f"Episode end: {self.termination}")
        limit = f"{self.time_limit} steps (then truncated)" if self.time_limit else "none"
        lines.append(f"Time limit: {limit}")
        solved = (
            f"average return >= {_num(self.solved_threshold)}"
            if self.solved_threshold is not None
            else "no agreed threshold; higher return is better"
        )
        lines.append(f"Solved: {solved}")
        if self.generated:
            lines.append("(Generated from the environment's spaces; no curated description exists.)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists, not tuples) for results files and the CLI."""
        return {
            "id": self.id,
            "title": self.title,
            "summary": self.summary,
            "observation_kind": self.observation_kind,
            "observation": [
                {"name": c.name, "meaning": c.meaning, "unit": c.unit, "low": c.low, "high": c.high}
                for c in self.observation
            ],
            "action_kind": self.action_kind,
            "actions": [{"name": a.name, "meaning": a.meaning} for a in self.actions],
            "reward": self.reward,
            "termination": self.termination,
            "time_limit": self.time_limit,
            "solved_threshold": self.solved_threshold,
            "generated": self.generated,
            "decode": _plain_decode(self.decode),
        }


def _plain_decode(decode: Decode | None) -> dict[str, Any] | None:
    if decode is None:
        return None
    return {
        "parts": [{"name": p.name, "size": p.size, "axis": p.axis, "places": p.places} for p in decode.parts],
        "places": {k: [{"name": p.name, "at": list(p.at)} for p in v] for k, v in decode.places},
        "moves": {a: list(d) for a, d in decode.moves},
        "grid": list(decode.grid),
        "avoid": decode.avoid,
        "slip": decode.slip,
        "walls": [[list(a), list(b)] for a, b in decode.walls],
    }


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _num(x: float | None) -> str:
    return "?" if x is None else f"{x:g}"


def _unit_and_range(comp: ObsComponent, range_word: str) -> str:
    parts = []
    if comp.unit:
        parts.append(comp.unit)
    if comp.low is not None or comp.high is not None:
        parts.append(f"{range_word} {_num(comp.low)} .. {_num(comp.high)}")
    return f" [{'; '.join(parts)}]" if parts else ""


def reflow(text: str) -> str:
    """Join hard-wrapped lines into paragraphs, keeping indented lines (maps, formulas) verbatim.

    Data files are wrapped for reviewers; a prompt reads better as paragraphs, but a grid
    map only means something with its line breaks intact.
    """
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(" ".join(para))
            para.clear()

    for line in text.strip("\n").splitlines():
        if not line.strip():
            flush()
            if out and out[-1] != "":
                out.append("")
        elif line[0].isspace():
            flush()
            out.append(line.rstrip())
        else:
            para.append(line.strip())
    flush()
    return "\n".join(out).strip("\n")


# --- curated files -------------------------------------------------------------------------


def _bad(file: str, problem: str) -> ValueError:
    # A broken bundled file is a packaging bug, not user input, so it is not a UserError.
    return ValueError(f"curated description {file}: {problem}")


def _nullable(data: dict[str, Any], key: str, file: str, kind: type) -> Any:
    if key not in data:
        raise _bad(file, f"missing '{key}' (write \"{_NONE}\" if gymnasium defines none)")
    value = data[key]
    if value == _NONE:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(file, f"'{key}' must be a number or \"{_NONE}\", got {value!r}")
    if kind is int:
        if not isinstance(value, int) or value <= 0:
            raise _bad(file, f"'{key}' must be a positive integer, got {value!r}")
        return value
    return float(value)


def _bound(value: Any, file: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(file, f"{where} must be a finite number (omit it if unknown), got {value!r}")
    return float(value)


def parse_description(data: dict[str, Any], file: str = "<memory>") -> EnvDescription:
    """Validate strictly so a typo in a data file fails the test suite instead of misleading a prompt."""
    known = set(_REQUIRED_KEYS) | set(_OPTIONAL_KEYS) | set(_NULLABLE_KEYS) | set(_PENDING_KEYS)
    unknown = sorted(set(data) - known)
    if unknown:
        raise _bad(file, f"unknown keys {unknown}")
    for key, kind in {**_REQUIRED_KEYS, **_OPTIONAL_KEYS}.items():
        if key in data and not isinstance(data[key], kind):
            raise _bad(file, f"'{key}' must be a {kind.__name__}")
        if key in _REQUIRED_KEYS and key not in data:
            raise _bad(file, f"missing '{key}'")
    if data["observation_kind"] not in OBSERVATION_KINDS:
        raise _bad(file, f"observation_kind must be one of {OBSERVATION_KINDS}")
    if data["action_kind"] not in ACTION_KINDS:
        raise _bad(file, f"action_kind must be one of {ACTION_KINDS}")

    observation = []
    for i, item in enumerate(data["observation"]):
        extra = set(item) - {"name", "meaning", "unit", "low", "high", "rate_of"}
        if extra or not all(isinstance(item.get(k), str) for k in ("name", "meaning", "unit")):
            raise _bad(
                file, f"observation[{i}] needs string name/meaning/unit and optional low/high/rate_of only"
            )
        low = _bound(item.get("low"), file, f"observation[{i}].low")
        high = _bound(item.get("high"), file, f"observation[{i}].high")
        if low is not None and high is not None and low > high:
            raise _bad(file, f"observation[{i}] has low > high")
        rate_of = item.get("rate_of")
        if rate_of is not None and not isinstance(rate_of, str):
            raise _bad(file, f"observation[{i}].rate_of must be the name of another component")
        observation.append(ObsComponent(item["name"], item["meaning"], item["unit"], low, high, rate_of))
    actions = []
    for i, item in enumerate(data["actions"]):
        if set(item) != {"name", "meaning"} or not all(isinstance(v, str) for v in item.values()):
            raise _bad(file, f"actions[{i}] needs exactly string name and meaning")
        actions.append(ActionInfo(item["name"], item["meaning"]))
    if not observation or not actions:
        raise _bad(file, "needs at least one observation component and one action")
    names = [c.name for c in observation]
    if len(set(names)) != len(names):
        raise _bad(file, "observation component names must be unique")
    for c in observation:
        if c.rate_of is not None and (c.rate_of not in names or c.rate_of == c.name):
            raise _bad(file, f"observation {c.name!r}: rate_of {c.rate_of!r} is not another component's name")
    decode = None
    if "decode" in data:
        decode = parse_decode(data["decode"], file, observation, [a.name for a in actions])

    return EnvDescription(
        id=data["id"],
        title=data["title"].strip(),
        summary=reflow(data["summary"]),
        observation_kind=data["observation_kind"],
        observation=tuple(observation),
        action_kind=data["action_kind"],
        actions=tuple(actions),
        reward=reflow(data["reward"]),
        termination=reflow(data["termination"]),
        time_limit=_nullable(data, "time_limit", file, int),
        solved_threshold=_nullable(data, "solved_threshold", file, float),
        generated=False,
        decode=decode,
        make=tuple(sorted(data.get("make", {}).items())),
        imports=tuple(data.get("imports", ())),
    )


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


def curated_files() -> dict[str, dict[str, Any]]:
    """Raw TOML of every bundled file by file name; tests use it to check provenance keys."""
    folder = resources.files("scriptrl.envs").joinpath("descriptions")
    raw = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            raw[entry.name] = tomllib.loads(entry.read_text(encoding="utf-8"))
    return raw


@functools.cache
def curated() -> dict[str, EnvDescription]:
    """Curated descriptions by environment id, loaded once per process."""
    out: dict[str, EnvDescription] = {}
    for file, data in curated_files().items():
        desc = parse_description(data, file)
        if file != f"{desc.id}.toml":
            raise _bad(file, f"file name must be '{desc.id}.toml' to match its id")
        out[desc.id] = desc
    return out


def list_descriptions() -> list[EnvDescription]:
    """The built-in curated descriptions, sorted by id, for `scriptrl envs` and documentation."""
    return sorted(curated().values(), key=lambda d: d.id)
