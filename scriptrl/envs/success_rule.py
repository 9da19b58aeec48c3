"""Episode success as data: a small boolean language over an episode's summary.

Why a language and not a return threshold: "mean return >= 22" cannot tell a car that drove
slowly and safely from one that drove fast and crashed once, and a regulated user must be able
to say, in a line a reviewer reads, what counts as a good episode (no collision *and* real
progress; landed; reached the goal). The expression is written in a description file or given
by the user, and evaluated here, in the trusted evaluator, never with ``eval``: it is parsed
with ``ast`` and only a whitelist of nodes is walked.

The language: ``and``/``or``/``not``, comparisons (``== != < <= > >=``, chained), numbers,
``True``/``False``, unary minus, and these names:

* ``episode_return``, ``length``, ``terminated``, ``truncated``, ``last_reward``;
* ``final.KEY``: the last step's ``info[KEY]``;
* ``mean.KEY``: the mean over the episode's steps of a numeric ``info[KEY]``.

Only the info keys an expression names are recorded, as running sums (no per-step storage).
Success must be shown, never assumed: a key the environment did not report, a value that cannot
be compared, or an episode the policy failed (an exception, an invalid action, a timeout) is
not a success.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import math
import numbers
import operator
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from scriptrl.errors import UserError
from scriptrl.program.parsing import parse_python

if TYPE_CHECKING:
    from scriptrl.envs.registry import ResolvedEnv

#: The episode figures an expression may name, and what each means (for error messages and docs).
FIGURES = {
    "episode_return": "the sum of the episode's rewards",
    "length": "the number of steps the episode took",
    "terminated": "the environment ended the episode (goal, crash, landing)",
    "truncated": "the episode hit its time limit",
    "last_reward": "the reward of the episode's last step",
}
_INFO = ("final", "mean")  # final.KEY: the last step's info[KEY]; mean.KEY: its mean over the steps
_MAX_LENGTH = 500
_NAMES_HINT = "use episode_return, length, terminated, truncated, last_reward, final.KEY or mean.KEY"
_EXAMPLE = 'e.g. "terminated and last_reward >= 100" or "not final.crashed and mean.speed >= 20"'
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class _Unknown(Exception):
    """A value the episode did not provide (an info key never reported): not a success."""


@dataclasses.dataclass(frozen=True)
class SuccessRule:
    """A checked success expression, with the line a person reads and the info keys it needs."""

    expression: str
    text: str
    final_keys: tuple[str, ...]
    mean_keys: tuple[str, ...]

    def tracker(self) -> EpisodeSummary:
        return EpisodeSummary(self)

    def judge(self, summary: EpisodeSummary, end: str) -> bool:
        """Whether one finished episode succeeded; ``end`` is how it ended (a failure never does)."""
        if end == "failure":
            return False
        try:
            return bool(_evaluate(_tree(self.expression), summary.figures(end)))
        except (_Unknown, TypeError, ValueError, ArithmeticError):
            return False


class EpisodeSummary:
    """Running figures of one episode: the last reward, and for each named info key its last
    value and the sum and count of its numeric values."""

    __slots__ = ("rule", "ret", "length", "last_reward", "final", "sums", "counts")

    def __init__(self, rule: SuccessRule) -> None:
        self.rule = rule
        self.ret = 0.0
        self.length = 0
        self.last_reward: float | None = None
        self.final: dict[str, Any] = {}
        self.sums = dict.fromkeys(rule.mean_keys, 0.0)
        self.counts = dict.fromkeys(rule.mean_keys, 0)

    def step(self, reward: float, info: Mapping[str, Any] | None) -> None:
        self.ret += reward
        self.length += 1
        self.last_reward = reward
        if not info or not isinstance(info, Mapping):  # a custom env may return anything as info
            return
        for key in self.rule.final_keys:
            if key in info:
                self.final[key] = _plain(info[key])
        for key in self.rule.mean_keys:
            value = _plain(info.get(key))
            if isinstance(value, numbers.Real) and math.isfinite(value):
                self.sums[key] += float(value)
                self.counts[key] += 1

    def figures(self, end: str) -> dict[str, Any]:
        means = {k: self.sums[k] / self.counts[k] for k in self.rule.mean_keys if self.counts[k]}
        return {
            "episode_return": self.ret,
            "length": self.length,
            "terminated": end == "terminated",
            "truncated": end == "truncated",
            "last_reward": self.last_reward,
            "final": self.final,
            "mean": means,
        }

    def missing(self) -> set[str]:
        """Named info keys this episode never reported (``final.KEY`` or numeric ``mean.KEY``)."""
        out = {f"final.{k}" for k in self.rule.final_keys if k not in self.final}
        return out | {f"mean.{k}" for k in self.rule.mean_keys if not self.counts[k]}


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, so comparisons behave as they read."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    return value


# --- parsing -----------------------------------------------------------------------------------


def parse_success(expression: Any, text: Any = None, where: str = "--success") -> SuccessRule:
    """Check ``expression`` (from ``where``: a flag or a description file) and return its rule; a
    bad one is a one-line ``UserError`` naming the problem and the fix."""
    if not isinstance(expression, str) or not expression.strip():
        raise UserError(f"{where}: the success expression must be a non-empty string, {_EXAMPLE}")
    expression = expression.strip()
    if len(expression) > _MAX_LENGTH:
        raise UserError(f"{where}: the success expression is over {_MAX_LENGTH} characters; shorten it")
    if text is not None and (not isinstance(text, str) or "\n" in text.strip()):
        raise UserError(f"{where}: success_text must be one line a person reads")
    try:
        tree = _tree(expression)
    except SyntaxError as e:
        raise UserError(
            f"{where}: success expression {expression!r} is not valid ({e.msg}); write {_EXAMPLE}"
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise UserError(f"{where}: success expression {expression!r} is too deeply nested") from None
    final: list[str] = []
    mean: list[str] = []
    _check(tree.body, expression, where, final, mean)
    return SuccessRule(
        expression,
        (text or "").strip() or expression,
        tuple(dict.fromkeys(final)),
        tuple(dict.fromkeys(mean)),
    )


@functools.lru_cache(maxsize=64)
def _tree(expression: str) -> ast.Expression:
    return parse_python(expression, mode="eval")


def _check(node: ast.AST, expression: str, where: str, final: list[str], mean: list[str]) -> None:
    def bad(problem: str) -> UserError:
        return UserError(f"{where}: success expression {expression!r}: {problem}")

    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, expression, where, final, mean)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.Not | ast.USub):
            raise bad("only 'not' and unary minus are allowed as unary operators")
        _check(node.operand, expression, where, final, mean)
    elif isinstance(node, ast.Compare):
        if not all(type(op) in _COMPARE for op in node.ops):
            raise bad("only the comparisons == != < <= > >= are allowed (no 'in' or 'is')")
        for v in (node.left, *node.comparators):
            _check(v, expression, where, final, mean)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, bool | int | float):
            raise bad(f"constant {node.value!r} is not allowed; only numbers and True/False are")
    elif isinstance(node, ast.Name):
        if node.id in _INFO:
            raise bad(f"'{node.id}' needs an info key: write {node.id}.KEY, e.g. {node.id}.speed")
        if node.id not in FIGURES and node.id not in ("True", "False"):
            raise bad(f"unknown name {node.id!r}; {_NAMES_HINT}")
    elif isinstance(node, ast.Attribute):
        if not isinstance(node.value, ast.Name) or node.value.id not in _INFO:
            raise bad(f"only final.KEY and mean.KEY take a dot (found {ast.unparse(node)!r})")
        if node.attr.startswith("_"):
            raise bad(f"info key {node.attr!r}: keys starting with '_' are not allowed")
        (final if node.value.id == "final" else mean).append(node.attr)
    elif isinstance(node, ast.Call):
        raise bad(f"calls are not allowed (found {ast.unparse(node)!r}); it only compares episode figures")
    else:
        raise bad(
            f"{type(node).__name__} ({ast.unparse(node)!r}) is not allowed; "
            "use and/or/not, comparisons, numbers and names"
        )


# --- evaluating ------------------------------------------------------------------------------


def _evaluate(node: ast.AST, figures: dict[str, Any]) -> Any:
    """Walk a checked tree; only the node kinds ``_check`` admits reach here."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, figures)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            value: Any = True
            for v in node.values:
                value = _evaluate(v, figures)
                if not value:
                    return value
            return value
        value = False
        for v in node.values:
            value = _evaluate(v, figures)
            if value:
                return value
        return value
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, figures)
        if isinstance(node.op, ast.Not):
            return not operand
        if isinstance(operand, bool) or not isinstance(operand, numbers.Real):
            raise TypeError("unary minus of a non-number")
        return -operand
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, figures)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comp, figures)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        value = figures[node.id]
        if value is None:  # last_reward of an episode with no step
            raise _Unknown(node.id)
        return value
    if isinstance(node, ast.Attribute):
        table = figures[node.value.id]  # type: ignore[attr-defined]  # checked: final or mean
        if node.attr not in table:
            raise _Unknown(node.attr)
        return table[node.attr]
    raise TypeError(f"unexpected node {type(node).__name__}")  # pragma: no cover - _check admits none


# --- where a rule comes from -----------------------------------------------------------------


def rule_from_description(data: Mapping[str, Any], file: str) -> SuccessRule | None:
    """A description's ``success`` and ``success_text`` keys; the text is required, since a rule a
    person cannot read is no audit trail."""
    if "success" not in data:
        if "success_text" in data:
            raise UserError(f'description {file}: success_text without success; add success = "EXPR"')
        return None
    if not str(data.get("success_text", "")).strip():
        raise UserError(f"description {file}: success needs success_text, one line saying what it means")
    return parse_success(data["success"], data["success_text"], where=f"description {file}")


def rule_of(env: ResolvedEnv) -> SuccessRule | None:
    """The success rule of a resolved environment (its description's, or the user's override)."""
    desc = env.description
    if desc.success is None:
        return None
    return _cached_rule(desc.success, desc.success_text)


@functools.lru_cache(maxsize=64)
def _cached_rule(expression: str, text: str | None) -> SuccessRule:
    return parse_success(expression, text)


def with_success(env: ResolvedEnv, expression: str | None, text: str | None = None) -> ResolvedEnv:
    """``env`` with its success defined (or redefined) by the user; ``None`` leaves it as it is.

    The rule rides on the description, which every worker and Ray actor already receives, so it
    is applied identically wherever the episodes run.
    """
    if expression is None:
        return env
    rule = parse_success(expression, text)
    desc = dataclasses.replace(env.description, success=rule.expression, success_text=rule.text)
    return dataclasses.replace(env, description=desc)
