"""The distilled tree written as a policy program a reviewer can read line by line.

Observations get the names of the environment's description (``theta1_dot``, not
``obs[4]``) and every leaf says which action it takes by name. A split is one ``if`` line;
since every branch ends in ``return``, the right side follows the ``if`` block without an
``else``, so a tree with n leaves is about 2n lines. Numbers are written with
``tune.DIGITS`` significant digits, the precision the tree was scored with. The program
converts the observation to Python floats first, so it computes in double precision exactly
as the tree did. It is ordinary scriptrl source: ``check_source`` accepts it, ``eval``
scores it and ``train --init`` can evolve it further.
"""

from __future__ import annotations

import keyword

import numpy as np

from scriptrl.distill.tree import Node
from scriptrl.distill.tune import DIGITS
from scriptrl.program.parsing import parse_python


def observation_names(description, n: int) -> list[str]:
    """The description's observation names when they are usable identifiers, else ``obs_0 ..``."""
    names = [c.name for c in getattr(description, "observation", None) or []]
    ok = (
        len(names) == n
        and len(set(names)) == n
        and all(s.isidentifier() and not keyword.iskeyword(s) and s not in ("obs", "policy") for s in names)
    )
    return names if ok else [f"obs_{i}" for i in range(n)]


def action_names(description, n: int) -> list[str]:
    names = [a.name for a in getattr(description, "actions", None) or []]
    return names if len(names) == n else [str(i) for i in range(n)]


def _num(v: float) -> str:
    return f"{float(v):.{DIGITS}g}"


def condition(weights: np.ndarray, threshold: float, names: list[str]) -> str:
    """``w . obs <= t`` with named terms, the largest first (it has coefficient ±1)."""
    order = sorted(np.flatnonzero(weights), key=lambda i: -abs(float(weights[i])))
    parts: list[str] = []
    for i in order:
        c = float(f"{float(weights[i]):.{DIGITS}g}")
        mag = "" if abs(c) == 1.0 else f"{_num(abs(c))} * "
        sign = "-" if c < 0 else "+"
        if not parts:
            parts.append(("-" if c < 0 else "") + mag + names[i])
        else:
            parts.append(f"{sign} {mag}{names[i]}")
    return f"{' '.join(parts)} <= {_num(threshold)}"


def render_program(root: Node, names: list[str], actions: list[str], docstring: str) -> str:
    """The whole program: docstring, ``policy(obs)`` unpacking named observations, the tree."""
    used = sorted(
        {int(i) for node in root.internal() if node.weights is not None for i in np.flatnonzero(node.weights)}
    )
    lines = ['"""' + docstring.strip() + '\n"""', "", "", "def policy(obs):"]
    if used:
        targets = [names[i] if i in used else "_" for i in range(len(names))]
        while targets and targets[-1] == "_":
            targets.pop()
        lhs = ", ".join(targets) + ("," if len(targets) == 1 else "")
        lines.append(f"    {lhs} = [float(v) for v in obs[:{len(targets)}]]")
    _emit(root, names, actions, 1, lines)
    return "\n".join(lines) + "\n"


def _emit(node: Node, names: list[str], actions: list[str], indent: int, lines: list[str]) -> None:
    pad = "    " * indent
    if node.is_leaf:
        label = actions[node.action]
        note = "" if label == str(node.action) else f"  # {label}"
        lines.append(f"{pad}return {node.action}{note}")
        return
    assert node.weights is not None and node.left is not None and node.right is not None
    lines.append(f"{pad}if {condition(node.weights, node.threshold, names)}:")
    _emit(node.left, names, actions, indent + 1, lines)
    _emit(node.right, names, actions, indent, lines)


def code_lines(source: str) -> int:
    """Lines that are neither blank, comments nor the docstring: the size a reviewer reads."""
    import ast

    tree = parse_python(source)
    doc = tree.body[0] if tree.body and isinstance(tree.body[0], ast.Expr) else None
    skip = set(range(doc.lineno, (doc.end_lineno or doc.lineno) + 1)) if doc else set()
    return sum(
        1
        for k, line in enumerate(source.splitlines(), start=1)
        if k not in skip and line.strip() and not line.strip().startswith("#")
    )
