"""The teacher: the network a ``scriptrl baseline`` run exported, read back without running it.

A baseline's champion is stored as a numpy program (``scriptrl.baselines.export``): a forward
pass of a few fixed line shapes and its weights as hex string constants. Distillation asks the
teacher for hundreds of thousands of actions, so it must answer in this process, batched; but a
run folder is a file someone may hand us, so its program is never executed here. Instead the
program's syntax tree is read: each weight is a literal (``_tensor("<hex>", "<f4", shape)``),
each forward line one of the shapes the exporter writes (linear, tanh, relu, elu, clip, the
frozen VecNormalize statistics), and anything else is refused as "not an exported network".
The rebuilt forward pass is plain numpy over a batch of observations.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import numpy as np

from scriptrl.baselines.export import Layer, NetSpec
from scriptrl.errors import UserError
from scriptrl.program.parsing import parse_python

_NOT_EXPORTED = "is not a network exported by `scriptrl baseline`"


@dataclass
class Teacher:
    """A baseline's deterministic policy as a batched numpy function (trusted: our own arithmetic)."""

    spec: NetSpec
    n_actions: int
    label: str  # e.g. "PPO program #12 of runs/acrobot-ppo"

    @property
    def n_obs(self) -> int:
        first = next(layer for layer in self.spec.layers if layer.kind == "linear")
        assert first.weight is not None
        return int(first.weight.shape[1])

    def outputs(self, obs: np.ndarray) -> np.ndarray:
        """The network's outputs (action logits for PPO/A2C, Q-values for DQN), one row per observation."""
        x = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        spec = self.spec
        if spec.obs_mean is not None and spec.obs_var is not None:
            x = np.clip(
                (x - spec.obs_mean) / np.sqrt(spec.obs_var + spec.obs_eps), -spec.obs_clip, spec.obs_clip
            )
            x = x.astype(np.float32)
        for layer in spec.layers:
            if layer.kind == "linear":
                assert layer.weight is not None and layer.bias is not None
                x = x @ layer.weight.T + layer.bias
            elif layer.kind == "tanh":
                x = np.tanh(x)
            elif layer.kind == "relu":
                x = np.maximum(x, 0.0)
            elif layer.kind == "elu":
                x = np.where(x > 0, x, np.expm1(x))
            elif layer.kind == "hardtanh":
                x = np.clip(x, layer.lo, layer.hi)
        return x

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.argmax(self.outputs(obs), axis=1)

    def importance(self, obs: np.ndarray) -> np.ndarray:
        """How much the choice matters in each state: the spread of the outputs (max - min).

        For a DQN teacher this is VIPER's weight, Q(s, best) - Q(s, worst); a PPO or A2C network
        exports no Q, so the spread of its action logits (how sure it is) stands in for it."""
        out = self.outputs(obs)
        return out.max(axis=1) - out.min(axis=1)


def load_teacher(source: str, label: str) -> Teacher:
    """The teacher from an exported program's source; a clear error for anything else."""
    try:
        tree = parse_python(source)
    except SyntaxError:
        raise UserError(f"{label} {_NOT_EXPORTED} (it does not parse)") from None
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    if "policy" not in funcs or "forward" not in funcs:
        raise UserError(f"{label} {_NOT_EXPORTED} (it has no policy() and forward())")
    if "np.argmax(forward(obs))" not in ast.unparse(funcs["policy"]):
        raise UserError(
            f"{label} has a continuous action head; distill needs a discrete action space (argmax policy)"
        )
    tensors = _tensors(tree, label)
    spec = NetSpec(layers=[], head="argmax", obs_kind="box")
    for stmt in funcs["forward"].body:
        _read_line(stmt, spec, tensors, label)
    if not any(layer.kind == "linear" for layer in spec.layers):
        raise UserError(f"{label} {_NOT_EXPORTED} (its forward pass has no layers)")
    if "OBS_MEAN" in tensors:
        spec.obs_mean, spec.obs_var = tensors["OBS_MEAN"], tensors.get("OBS_VAR")
        if spec.obs_var is None:
            raise UserError(f"{label} {_NOT_EXPORTED} (OBS_MEAN without OBS_VAR)")
    last = next(layer for layer in reversed(spec.layers) if layer.kind == "linear")
    assert last.weight is not None
    return Teacher(spec, int(last.weight.shape[0]), label)


def _tensors(tree: ast.Module, label: str) -> dict[str, np.ndarray]:
    """Every module-level ``NAME = _tensor("hex", "dtype", (shape))``, decoded from its literals."""
    out: dict[str, np.ndarray] = {}
    for node in tree.body:
        if not (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        ):
            continue
        call = node.value
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "_tensor"):
            continue
        try:
            text, dtype, shape = (ast.literal_eval(a) for a in call.args)
            if dtype not in ("<f4", "<f8"):
                raise ValueError(dtype)
            out[node.targets[0].id] = np.frombuffer(bytes.fromhex(text), dtype=dtype).reshape(shape)
        except (ValueError, TypeError, SyntaxError):
            raise UserError(f"{label} {_NOT_EXPORTED} (line {node.lineno}: an unreadable weight)") from None
    return out


def _read_line(stmt: ast.stmt, spec: NetSpec, tensors: dict[str, np.ndarray], label: str) -> None:
    """One forward-pass line, matched against the shapes ``export._forward_lines`` writes."""
    if isinstance(stmt, ast.Return):
        return
    text = ast.unparse(stmt)
    bad = UserError(f"{label} {_NOT_EXPORTED} (forward line {stmt.lineno}: {text[:60]})")
    if not (isinstance(stmt, ast.Assign) and ast.unparse(stmt.targets[0]) == "x"):
        raise bad
    value = stmt.value
    if text in ("x = np.asarray(obs, dtype=np.float32).reshape(-1)", "x = x.astype(np.float32)"):
        return
    if text == "x = np.tanh(x)":
        spec.layers.append(Layer("tanh"))
    elif text == "x = np.maximum(x, 0.0)":
        spec.layers.append(Layer("relu"))
    elif text == "x = np.where(x > 0, x, np.expm1(x))":
        spec.layers.append(Layer("elu"))
    elif isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add) and isinstance(value.left, ast.BinOp):
        w, b = ast.unparse(value.left.left), ast.unparse(value.right)
        if not (isinstance(value.left.op, ast.MatMult) and ast.unparse(value.left.right) == "x"):
            raise bad
        if w not in tensors or b not in tensors:
            raise bad
        spec.layers.append(Layer("linear", tensors[w].astype(np.float32), tensors[b].astype(np.float32)))
    elif text.startswith("x = np.clip((x - OBS_MEAN) / np.sqrt(OBS_VAR + "):
        call = value
        assert isinstance(call, ast.Call)
        try:
            spec.obs_eps = float(ast.literal_eval(call.args[0].right.args[0].right))  # type: ignore[attr-defined]
            spec.obs_clip = float(ast.literal_eval(call.args[2]))
        except (AttributeError, IndexError, ValueError):
            raise bad from None
    elif text.startswith("x = np.clip(x, ") and isinstance(value, ast.Call) and len(value.args) == 3:
        try:
            lo, hi = (float(ast.literal_eval(a)) for a in value.args[1:])
        except ValueError:
            raise bad from None
        spec.layers.append(Layer("hardtanh", lo=lo, hi=hi))
    else:
        raise bad
