"""The rl-baselines3-zoo hyperparameters, read from the shipped data file.

A baseline is only a fair yardstick if it is trained the way its authors tuned it, so the
values live in ``hyperparams.toml`` (copied from the zoo, source named there) rather than
in code where they could drift towards whatever makes scriptrl look good. Reading this file
needs no torch: ``scriptrl baseline`` can refuse a bad algorithm or environment before it
pays for importing one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from scriptrl.errors import UserError

ALGOS = ("ppo", "dqn", "a2c", "sac")
#: Keys the zoo uses for its own machinery; everything else goes to the SB3 constructor.
_ZOO_KEYS = {"n_envs", "n_timesteps", "normalize", "policy", "zoo_key", "note"}
#: Action spaces each algorithm can drive (SB3 refuses the others with a long traceback).
ACTION_SPACES = {
    "ppo": ("Discrete", "Box"),
    "a2c": ("Discrete", "Box"),
    "dqn": ("Discrete",),
    "sac": ("Box",),
}


@dataclass
class ZooEntry:
    """One algorithm's settings for one environment, and where they came from."""

    algo: str
    env_id: str
    n_envs: int
    n_timesteps: int
    normalize: bool
    kwargs: dict[str, Any] = field(default_factory=dict)  # as written in the file (plain data)
    source: str = ""
    tuned: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "algo": self.algo,
            "env_id": self.env_id,
            "n_envs": self.n_envs,
            "n_timesteps": self.n_timesteps,
            "normalize": self.normalize,
            "kwargs": self.kwargs,
            "source": self.source,
            "tuned": self.tuned,
        }


@cache
def _table() -> dict[str, Any]:
    text = resources.files("scriptrl.baselines").joinpath("hyperparams.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def source_note() -> str:
    s = _table()["source"]
    return f"{s['name']} ({s['repository']}, {', '.join(s['files'])}; {s['licence']} licence)"


def zoo_entry(algo: str, env_id: str) -> ZooEntry:
    """The zoo's settings for ``env_id``, or SB3's defaults clearly marked as untuned."""
    algo = algo.lower()
    if algo not in ALGOS:
        raise UserError(f"unknown --algo '{algo}' (use {', '.join(ALGOS)})")
    table = _table()[algo]
    raw = table.get(env_id)
    if raw is None:
        raw = table["default"]
    raw = dict(raw)
    zoo_key = raw.get("zoo_key", env_id)
    repo = _table()["source"]["repository"]
    if zoo_key:
        source = f"rl-baselines3-zoo ({repo}) hyperparams/{algo}.yml, entry {zoo_key}"
    else:
        source = raw.get("note", f"not in rl-baselines3-zoo: Stable-Baselines3's {algo.upper()} defaults")
    kwargs = {k: v for k, v in raw.items() if k not in _ZOO_KEYS}
    return ZooEntry(
        algo=algo,
        env_id=env_id,
        n_envs=int(raw.get("n_envs", 1)),
        n_timesteps=int(float(raw.get("n_timesteps", 1e6))),
        normalize=bool(raw.get("normalize", False)),
        kwargs=kwargs,
        source=source,
        tuned=bool(zoo_key),
    )


def sb3_kwargs(entry: ZooEntry) -> dict[str, Any]:
    """The zoo's spellings turned into what the SB3 constructors take (needs torch)."""
    import torch.nn as nn

    activations = {
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "elu": nn.ELU,
        "leaky_relu": nn.LeakyReLU,
        "gelu": nn.GELU,
    }
    out: dict[str, Any] = {}
    for key, value in entry.kwargs.items():
        if isinstance(value, str) and value.startswith("lin_"):
            out[key] = LinearSchedule(float(value[4:]))
        elif key == "policy_kwargs":
            pk = dict(value)
            if "activation_fn" in pk:
                name = str(pk["activation_fn"]).lower().removeprefix("nn.")
                if name not in activations:
                    raise UserError(f"hyperparams.toml: unknown activation_fn '{pk['activation_fn']}'")
                pk["activation_fn"] = activations[name]
            out[key] = pk
        else:
            out[key] = value
    return out


class LinearSchedule:
    """The zoo's ``lin_X`` schedule; a class rather than a closure so SB3 can pickle the model."""

    def __init__(self, start: float) -> None:
        self.start = start

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.start

    def __repr__(self) -> str:
        return f"lin_{self.start:g}"
