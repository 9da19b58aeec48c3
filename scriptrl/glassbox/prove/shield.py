"""A runtime shield: the exported policy wrapped in a monitor that enforces stated properties.

Why at run time too: a proof covers the box it was given and the real-number reading
of the program; a deployment meets observations outside the box and float rounding.
The shield checks every (obs, action) against the properties before the action leaves
the policy; when one fails it returns the stated fallback action instead and records
the intervention (step, observation, proposed action, property) in the instance's ``log``.
The wrapper uses only the standard library, so the exported file still passes
scriptrl's static checks and runs in its sandbox (``scriptrl eval`` of it works).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

from scriptrl.errors import UserError
from scriptrl.glassbox.prove.properties import Property, check_expression
from scriptrl.program.parsing import parse_python

LOG_LIMIT = 10_000


@dataclass
class ShieldSpec:
    properties: list[Property]
    fallback: Any


def load_shield(path: str, fallback: str | None) -> ShieldSpec:
    """A properties file (the same TOML as ``verify --properties``) plus its ``fallback`` action."""
    import tomllib
    from pathlib import Path

    from scriptrl.glassbox.prove.properties import load_properties

    pset = load_properties(path)
    raw = fallback
    if raw is None:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        if "fallback" not in data:
            raise UserError(
                f"{path}: a shield needs a fallback action: fallback = 0 in the file, or --fallback ACTION"
            )
        raw = json.dumps(data["fallback"])
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise UserError(
            f"--fallback {raw!r} is not a number or a list of numbers (e.g. 0, or [0.0, 0.0])"
        ) from None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok or bool(
        isinstance(value, list)
        and value
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
    )
    if not ok:
        raise UserError(f"the fallback action {value!r} must be a number or a list of numbers")
    return ShieldSpec(pset.properties, value)


def shield_source(source: str, spec: ShieldSpec) -> str:
    """``source`` with its entry point renamed and a monitoring ``policy`` / ``Policy`` in its place."""
    tree = parse_python(source)
    entry = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "policy"), None)
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Policy"), None)
    target = entry or cls
    if target is None:
        raise UserError("the program has no policy(obs) or class Policy to shield")
    lines = source.splitlines()
    i = target.lineno - 1
    old, new = (
        ("def policy", "def unshielded_policy") if entry else ("class Policy", "class UnshieldedPolicy")
    )
    if old not in lines[i]:
        raise UserError(
            "the program's entry point is not written on one line as `def policy` / `class Policy`"
        )
    lines[i] = lines[i].replace(old, new, 1)
    checks = []
    for k, p in enumerate(spec.properties):
        check_expression(p.expr, f"shield property {p.name!r}")
        body = ast.unparse(
            parse_python(p.expr, mode="eval").body
        )  # one expression, re-printed: no statements ride along
        checks.append(f"def shield_check_{k}(obs, action):\n    return bool({body})\n")
    names = json.dumps([p.name for p in spec.properties])
    table = ", ".join(f"shield_check_{k}" for k in range(len(spec.properties)))
    parts = _CLASS_PARTS if cls is not None and entry is None else _FUNCTION_PARTS
    wrapper = _WRAPPER.format(
        fallback=repr(spec.fallback), names=names, table=table, limit=LOG_LIMIT, **parts
    )
    return (
        "\n".join(lines).rstrip("\n")
        + "\n\n\n# ---- runtime shield (scriptrl export --shield) ----\n"
        + "import collections\n\n\n"
        + "\n\n".join(checks)
        + "\n\n"
        + wrapper
    )


_WRAPPER = '''SHIELD_FALLBACK = {fallback}
SHIELD_PROPERTIES = {names}
SHIELD_CHECKS = [{table}]


def shield(obs, action):
    """The action if every property holds for it, else the fallback, and the property that failed."""
    for name, check in zip(SHIELD_PROPERTIES, SHIELD_CHECKS):
        try:
            held = check(obs, action)
        except Exception:
            held, name = False, name + " (the check raised)"
        if not held:
            return SHIELD_FALLBACK, name
    return action, None


class Policy:
    """The program under its runtime shield. The monitor's record lives in the instance (one per
    episode in scriptrl's evaluator; keep one per run when deploying): ``steps``,
    ``interventions`` and ``log``, the latest interventions."""

    def __init__(self):
        self.inner = {inner}
        self.log = collections.deque(maxlen={limit})
        self.steps = 0
        self.interventions = 0

    def reset(self, seed=None):
        {reset}

    def act(self, obs):
        self.steps += 1
        proposed = {propose}
        action, broken = shield(obs, proposed)
        if broken is not None:
            self.interventions += 1
            obs_list = [float(x) for x in obs] if hasattr(obs, "__len__") else obs
            self.log.append({{"step": self.steps, "obs": obs_list, "proposed": proposed, "property": broken}})
        return action
'''

_FUNCTION_PARTS = {"inner": "None", "reset": "return None", "propose": "unshielded_policy(obs)"}
_CLASS_PARTS = {
    "inner": "UnshieldedPolicy()",
    # The inner class's reset may or may not take the episode seed.
    "reset": (
        "try:\n            return self.inner.reset(seed)\n"
        "        except TypeError:\n            return self.inner.reset()"
    ),
    "propose": "self.inner.act(obs)",
}


def interventions(shielded: str, original: str, renv: Any, seeds: list[int], unsafe: bool = False) -> dict:
    """How often the shield changed the action on these episodes: the shielded program's visited states,
    asked of the unshielded one (both in the sandbox)."""
    from scriptrl.glassbox.behaviour_diff import _observation, ask, visited_states
    from scriptrl.program import Program

    states, actions = visited_states(Program(shielded, "shielded.py"), renv, seeds, unsafe)
    probe = renv.make()
    obs = [_observation(probe.observation_space, s if isinstance(s, list) else [s]) for s in states]
    probe.close()
    inner = ask(Program(original, "unshielded.py"), renv, obs, unsafe)
    changed = sum(1 for a, b in zip(actions, inner, strict=True) if json.dumps(a) != json.dumps(b))
    return {"steps": len(states), "interventions": changed, "seeds": [seeds[0], seeds[-1]]}
