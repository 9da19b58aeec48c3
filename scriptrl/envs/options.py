"""Make-time options of an environment (``gymnasium.make(id, **options)``), from the command line,
a TOML file or the environment's description.

Why one place: the options change what the environment *is* (highway-env's ``config`` picks the
observation, lanes and traffic density), so they must be stored with a run and applied
identically in every worker, local or on Ray. They travel inside ``ResolvedEnv.kwargs``, which
``make()`` applies wherever the environment is built.

Precedence, lowest first: the description's ``[make]`` table, an options file, ``--env-option``
flags. Nested tables merge key by key, so ``--env-option config.lanes_count=4`` changes one key
of the description's ``config`` and keeps the rest.

One key is scriptrl's own, not the environment's: ``wrapper = "module:Class"`` (or a list of
them, innermost first) names trusted observation adapters (``scriptrl/envs/adapters/``) that
``make()`` applies around the built environment, so a description can turn a simulator's raw
arrays into named readings and every worker, local or on Ray, sees the same observation.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scriptrl.errors import UserError


def parse_option(text: str) -> tuple[list[str], Any]:
    """``key.sub=value``: the value is read as JSON (numbers, true/false, lists, objects) and kept
    as a string when it is not JSON, so ``--env-option render_mode=rgb_array`` needs no quotes."""
    key, sep, raw = text.partition("=")
    path = [p.strip() for p in key.split(".")]
    if not sep or not all(path):
        raise UserError(f"bad --env-option {text!r}: write KEY=VALUE, e.g. config.lanes_count=4")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return path, value


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: tables merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def from_flags(flags: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for text in flags:
        path, value = parse_option(text)
        nested: Any = value
        for key in reversed(path[1:]):
            nested = {key: nested}
        out = merge(out, {path[0]: nested})
    return out


def from_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"environment options file {str(p)!r} not found; check the path given with --env-options"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"environment options file {str(p)!r} is not valid TOML: {exc}") from exc


def gather(file: str | None = None, flags: Iterable[str] = ()) -> dict[str, Any]:
    """The user's options (file, then flags) as one plain dict, as stored in a run's config."""
    return merge(from_file(file) if file else {}, from_flags(flags))


def as_kwargs(options: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Sorted key/value pairs, the form ``ResolvedEnv.kwargs`` keeps (stable labels and configs)."""
    return tuple(sorted(options.items()))


WRAPPER_KEY = "wrapper"


def split_wrappers(options: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The adapters named under ``wrapper`` and the remaining options for the environment itself."""
    rest = dict(options)
    raw = rest.pop(WRAPPER_KEY, ())
    names = (raw,) if isinstance(raw, str) else raw
    if not isinstance(names, list | tuple) or not all(
        isinstance(n, str) and n.count(":") == 1 and all(n.split(":")) for n in names
    ):
        raise UserError(
            f"environment option {WRAPPER_KEY}={raw!r} must be 'module:Class' or a list of them, "
            "e.g. scriptrl.envs.adapters.highway_gaps:HighwayGaps"
        )
    return tuple(names), rest
