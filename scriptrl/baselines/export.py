"""A trained Stable-Baselines3 policy written out as a numpy-only policy program.

The point of a baseline is to be scored exactly like a scriptrl program: same evaluator,
same sandbox, same seeds, same episode digests. The sandbox runs programs, not torch
models, so the network's deterministic forward pass is written as a short numpy function
with its weights embedded as little-endian hex strings (exact to the bit, one string
constant per tensor, so the source stays a few hundred kilobytes at most and parses fast).
``verify`` checks the program against ``model.predict(deterministic=True)`` before anything
is scored, so a wrong export can never pass for a bad baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from scriptrl.errors import UserError

if TYPE_CHECKING:
    from torch import nn


@dataclass
class Layer:
    kind: str  # linear | tanh | relu | elu | hardtanh
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    lo: float = -1.0
    hi: float = 1.0


@dataclass
class NetSpec:
    """Everything the forward pass needs, torch-free."""

    layers: list[Layer]
    head: str  # argmax | clip | tanh_unscale
    obs_kind: str  # box | onehot
    obs_n: int = 0  # one-hot size for Discrete observations
    obs_mean: np.ndarray | None = None  # VecNormalize statistics, frozen at export time
    obs_var: np.ndarray | None = None
    obs_eps: float = 1e-8
    obs_clip: float = 10.0
    act_low: np.ndarray | None = None
    act_high: np.ndarray | None = None


def _modules_to_layers(modules) -> list[Layer]:
    import torch.nn as nn

    layers: list[Layer] = []
    for m in modules:
        if isinstance(m, nn.Sequential):
            layers.extend(_modules_to_layers(list(m)))
        elif isinstance(m, nn.Linear):
            w = m.weight.detach().cpu().numpy().astype(np.float32)
            b = (
                m.bias.detach().cpu().numpy().astype(np.float32)
                if m.bias is not None
                else np.zeros(w.shape[0], np.float32)
            )
            layers.append(Layer("linear", w, b))
        elif isinstance(m, nn.Tanh):
            layers.append(Layer("tanh"))
        elif isinstance(m, nn.ReLU):
            layers.append(Layer("relu"))
        elif isinstance(m, nn.ELU) and float(m.alpha) == 1.0:
            layers.append(Layer("elu"))
        elif isinstance(m, nn.Hardtanh):
            layers.append(Layer("hardtanh", lo=float(m.min_val), hi=float(m.max_val)))
        elif isinstance(m, nn.Identity | nn.Flatten):
            continue
        else:
            raise UserError(
                f"cannot export a {type(m).__name__} layer to a numpy program (supported: Linear, "
                "Tanh, ReLU, ELU, Hardtanh)"
            )
    return layers


def net_spec(model, vec_normalize=None) -> NetSpec:
    """Read the deterministic action path out of a PPO, A2C, DQN or SAC model."""
    from gymnasium import spaces
    from stable_baselines3.common.policies import ActorCriticPolicy
    from stable_baselines3.common.torch_layers import FlattenExtractor
    from stable_baselines3.dqn.policies import DQNPolicy
    from stable_baselines3.sac.policies import SACPolicy

    policy = model.policy
    modules: list[nn.Module]
    if isinstance(policy, DQNPolicy):
        extractor, modules, head = policy.q_net.features_extractor, [policy.q_net.q_net], "argmax"
    elif isinstance(policy, ActorCriticPolicy):
        if policy.squash_output:
            raise UserError("cannot export a policy with squash_output=True")
        extractor = policy.pi_features_extractor
        modules = [policy.mlp_extractor.policy_net, policy.action_net]
        head = "argmax" if isinstance(model.action_space, spaces.Discrete) else "clip"
    elif isinstance(policy, SACPolicy):
        extractor, modules, head = (
            policy.actor.features_extractor,
            [policy.actor.latent_pi, policy.actor.mu],
            "tanh_unscale",
        )
    else:
        raise UserError(f"cannot export a {type(policy).__name__} (supported: PPO, A2C, DQN, SAC MlpPolicy)")
    if not isinstance(extractor, FlattenExtractor):
        raise UserError(f"cannot export a {type(extractor).__name__} features extractor (only MlpPolicy)")
    obs_space = model.observation_space
    if isinstance(obs_space, spaces.Discrete):
        spec = NetSpec(_modules_to_layers(modules), head, "onehot", obs_n=int(obs_space.n))
    elif isinstance(obs_space, spaces.Box):
        spec = NetSpec(_modules_to_layers(modules), head, "box")
    else:
        raise UserError(f"cannot export a policy for a {type(obs_space).__name__} observation space")
    if vec_normalize is not None and vec_normalize.norm_obs:
        if spec.obs_kind != "box":
            raise UserError("observation normalization is only supported for Box observations")
        spec.obs_mean = np.asarray(vec_normalize.obs_rms.mean, dtype=np.float64)
        spec.obs_var = np.asarray(vec_normalize.obs_rms.var, dtype=np.float64)
        spec.obs_eps = float(vec_normalize.epsilon)
        spec.obs_clip = float(vec_normalize.clip_obs)
    if head != "argmax":
        spec.act_low = np.asarray(model.action_space.low, dtype=np.float32)
        spec.act_high = np.asarray(model.action_space.high, dtype=np.float32)
    return spec


def _hex(a: np.ndarray, dtype: str) -> str:
    return np.ascontiguousarray(a, dtype=dtype).tobytes().hex()


def _tensor_line(name: str, a: np.ndarray, dtype: str = "<f4") -> str:
    return f'{name} = _tensor("{_hex(a, dtype)}", "{dtype}", {tuple(int(s) for s in a.shape)!r})'


def program_source(spec: NetSpec, title: str, notes: list[str] | None = None) -> str:
    """The policy program: docstring, forward pass, then the weights (read at call time)."""
    body, weights = _forward_lines(spec)
    if spec.head == "argmax":
        act = ["    return int(np.argmax(forward(obs)))"]
    elif spec.head == "clip":
        act = ["    return np.clip(forward(obs), ACT_LOW, ACT_HIGH).tolist()"]
    else:  # SAC squashes with tanh, then rescales to the action bounds
        act = [
            "    a = np.tanh(forward(obs))",
            "    return np.clip(ACT_LOW + 0.5 * (a + 1.0) * (ACT_HIGH - ACT_LOW), "
            "ACT_LOW, ACT_HIGH).tolist()",
        ]
    if spec.obs_mean is not None:
        weights.append(_tensor_line("OBS_MEAN", spec.obs_mean, "<f8"))
        weights.append(_tensor_line("OBS_VAR", spec.obs_var, "<f8"))  # type: ignore[arg-type]
    if spec.act_low is not None:
        weights.append(_tensor_line("ACT_LOW", spec.act_low))
        weights.append(_tensor_line("ACT_HIGH", spec.act_high))  # type: ignore[arg-type]
    doc = (
        [title, ""]
        + list(notes or [])
        + [
            "The network's deterministic action, written in numpy so the sandbox scores it like any",
            "other program. Weights are little-endian float32 (statistics float64) as hex strings.",
        ]
    )
    lines = [
        '"""' + "\n".join(doc).rstrip() + '\n"""',
        "",
        "import numpy as np",
        "",
        "",
        "def policy(obs):",
        *act,
        "",
        "",
        "def forward(obs):",
        *body,
        "",
        "",
        "def _tensor(text, dtype, shape):",
        "    return np.frombuffer(bytes.fromhex(text), dtype=dtype).reshape(shape)",
        "",
        "",
        *weights,
        "",
    ]
    return "\n".join(lines)


def verify(source: str, model, vec_normalize, observations: list[Any], tol: float = 1e-4) -> float:
    """Fraction of ``observations`` where the program and ``model.predict`` agree; raises below 99 %.

    Near-ties of an argmax (outputs within ``tol``) may round either way in float32, so
    those count as agreement; anything else is an export bug.
    """
    namespace: dict[str, Any] = {}
    exec(compile(source, "<exported policy>", "exec"), namespace)  # our own generated code, trusted
    agree = 0
    for obs in observations:
        raw = np.asarray(obs)
        model_obs = vec_normalize.normalize_obs(raw.astype(np.float32)) if vec_normalize is not None else raw
        want, _ = model.predict(model_obs, deterministic=True)
        got = namespace["policy"](obs)
        if isinstance(got, int):
            out = namespace["forward"](obs)
            ok = int(want) == got or abs(float(out[got]) - float(out[int(want)])) <= tol
        else:
            ok = bool(
                np.allclose(
                    np.asarray(got, dtype=np.float64),
                    np.asarray(want, dtype=np.float64).ravel(),
                    atol=tol * 10,
                    rtol=tol,
                )
            )
        agree += ok
    frac = agree / max(1, len(observations))
    if frac < 0.99:
        raise RuntimeError(
            f"exported policy disagrees with model.predict on {len(observations) - agree} of "
            f"{len(observations)} observations"
        )
    return frac


def sample_observations(env, n: int, seed: int) -> list[Any]:
    """Observations the policy will really see (a random-action rollout), not the space's extremes."""
    out: list[Any] = []
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    env.action_space.seed(int(rng.integers(2**31)))
    while len(out) < n:
        out.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset(seed=int(rng.integers(2**31)))
    return out


def source_bytes_estimate(spec: NetSpec) -> int:
    """Rough program size, to refuse a network too big for the sandbox's load message early."""
    # a linear layer always has both (a missing torch bias is exported as zeros)
    n = sum(
        layer.weight.size + layer.bias.size
        for layer in spec.layers
        if layer.weight is not None and layer.bias is not None
    )
    return int(math.ceil(n * 8 * 1.05)) + 4096


def _forward_lines(spec: NetSpec) -> tuple[list[str], list[str]]:
    """The forward pass's lines (input encoding, then one line per layer) and the weight lines it reads."""
    body: list[str] = []
    if spec.obs_kind == "onehot":
        body.append(f"    x = np.zeros({spec.obs_n}, dtype=np.float32)")
        body.append("    x[int(obs)] = 1.0")
    elif spec.obs_mean is not None:
        body.append("    x = np.asarray(obs, dtype=np.float32).reshape(-1)")
        body.append("    # VecNormalize's running statistics, frozen when the checkpoint was taken")
        body.append(
            f"    x = np.clip((x - OBS_MEAN) / np.sqrt(OBS_VAR + {spec.obs_eps!r}), "
            f"-{spec.obs_clip!r}, {spec.obs_clip!r})"
        )
        body.append("    x = x.astype(np.float32)")
    else:
        body.append("    x = np.asarray(obs, dtype=np.float32).reshape(-1)")
    weights: list[str] = []
    k = 0
    for layer in spec.layers:
        if layer.kind == "linear":
            k += 1
            assert layer.weight is not None and layer.bias is not None
            out_n, in_n = layer.weight.shape
            body.append(f"    x = W{k} @ x + B{k}  # {in_n} -> {out_n}")
            weights.append(_tensor_line(f"W{k}", layer.weight))
            weights.append(_tensor_line(f"B{k}", layer.bias))
        elif layer.kind == "tanh":
            body.append("    x = np.tanh(x)")
        elif layer.kind == "relu":
            body.append("    x = np.maximum(x, 0.0)")
        elif layer.kind == "elu":
            body.append("    x = np.where(x > 0, x, np.expm1(x))")
        elif layer.kind == "hardtanh":
            body.append(f"    x = np.clip(x, {layer.lo!r}, {layer.hi!r})")
    body.append("    return x")
    return body, weights
