"""Islands of programs with niches, so one lineage cannot take over the search.

Each island keeps at most one program per *niche*: the program's structure with every
numeric constant blanked out. Tuning constants or nudging them therefore competes
inside its own niche, and structurally different programs survive beside a strong one.
Migration occasionally copies an island's best into its neighbour.
"""

from __future__ import annotations

import ast
import hashlib
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from scriptrl.program.parsing import parse_python


def structure_signature(source: str, signed: bool = True) -> str:
    """Hash of the program with numeric literals replaced, i.e. its niche.

    ``signed=False`` also forgets the sign of each literal: ``a - 0.3 * x`` and ``a + 0.3 * x``
    are the same constant with another value, which is what CMA-ES writes when it moves a weight
    through zero (a negative number is written as ``-`` applied to a positive literal, or as a
    subtraction in a sum, so with signs such a move changes the niche).
    """
    try:
        tree = parse_python(source)
    except SyntaxError:
        return hashlib.sha256(source.encode()).hexdigest()[:16]
    if not signed:
        tree = _Unsigned().visit(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and _numeric(node.value):
            node.value = 0
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()[:16]


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and _numeric(node.value)


def _signed_by_number(node: ast.AST) -> bool:
    """A number, or a product or quotient whose first factor is one (``0.3 * x``)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Div):
        return _signed_by_number(node.left)
    return _is_number(node)


class _Unsigned(ast.NodeTransformer):
    """Replaces ``-<number>`` by the number and ``a - <number> * x`` by ``a + <number> * x``
    (how a negative constant is written in a sum)."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Sub) and _signed_by_number(node.right):
            node.op = ast.Add()
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.USub) and _is_number(node.operand):
            return node.operand
        return node


@dataclass
class Member:
    """A program in the population. Its score is the mean return over every fresh training-stream
    episode it has played (``n`` of them), so a lucky first race is diluted as it plays on."""

    id: int
    score: float
    niche: str
    n: int = 0
    total: float = 0.0
    sq: float = 0.0  # sum of squared returns, for the variance of the mean

    def add(self, returns: list[float]) -> None:
        self.n += len(returns)
        self.total += sum(returns)
        self.sq += sum(r * r for r in returns)
        if self.n:
            self.score = self.total / self.n

    def variance_of_mean(self) -> float:
        if self.n < 2:
            return math.inf
        var = max(0.0, (self.sq - self.total * self.total / self.n) / (self.n - 1))
        return var / self.n


@dataclass
class Island:
    members: list[Member] = field(default_factory=list)

    def best(self) -> Member | None:
        return max(self.members, key=lambda m: (m.score, -m.id), default=None)

    def offer(self, member: Member, capacity: int) -> bool:
        """Insert if it earns a place: best of its niche, and better than the worst when full."""
        if any(m.id == member.id for m in self.members):
            return False
        same = [m for m in self.members if m.niche == member.niche]
        if same:
            incumbent = same[0]
            if member.score > incumbent.score:
                self.members[self.members.index(incumbent)] = member
                return True
            return False
        if len(self.members) < capacity:
            self.members.append(member)
            return True
        worst = min(self.members, key=lambda m: (m.score, -m.id))
        if member.score > worst.score:
            self.members[self.members.index(worst)] = member
            return True
        return False

    def select(self, rng: random.Random, temperature: float, k: int = 3) -> Member:
        """Tournament selection; a hotter search uses smaller tournaments (more exploration)."""
        size = max(1, min(len(self.members), round(k * (1.5 - min(temperature, 1.4)))))
        contenders = rng.sample(self.members, size)
        return max(contenders, key=lambda m: (m.score, -m.id))


@dataclass
class Population:
    islands: list[Island]
    capacity: int

    @classmethod
    def empty(cls, n_islands: int, capacity: int) -> Population:
        return cls([Island() for _ in range(n_islands)], capacity)

    def member(self, pid: int) -> Member | None:
        """Every copy of a program (migration copies it) shares one record in ``members``."""
        return next((m for i in self.islands for m in i.members if m.id == pid), None)

    def add_returns(self, pid: int, returns: list[float]) -> None:
        """Fresh episodes a member played; a migrated copy restored as its own object gets them too."""
        seen: set[int] = set()
        for island in self.islands:
            for m in island.members:
                if m.id == pid and id(m) not in seen:
                    seen.add(id(m))
                    m.add(returns)

    def best(self) -> Member | None:
        return max((b for i in self.islands if (b := i.best())), key=lambda m: (m.score, -m.id), default=None)

    def next_to_tune(
        self, fruitless: Mapping[int, int], top: int = 8, accept: Callable[[Member], bool] | None = None
    ) -> Member | None:
        """The best of the top programs whose tuning has found nothing fewest times: the leader
        first, then the runners-up, and the leader again once each had its turn. ``accept``
        keeps only the top programs a lane can tune (the dense lane: those with a dense form)."""
        members = {m.id: m for island in self.islands for m in island.members}
        best = sorted(members.values(), key=lambda m: (-m.score, m.id))[:top]
        if accept is not None:
            best = [m for m in best if accept(m)]
        return min(best, key=lambda m: (fruitless.get(m.id, 0), -m.score, m.id), default=None)

    def migrate(self) -> list[tuple[int, int]]:
        """Ring migration of each island's best; returns (program id, to island) moves."""
        moves = []
        bests = [i.best() for i in self.islands]
        for idx, b in enumerate(bests):
            if b is None:
                continue
            dest = (idx + 1) % len(self.islands)
            if self.islands[dest].offer(b, self.capacity):  # the same record: its episodes count once
                moves.append((b.id, dest))
        return moves

    def size(self) -> int:
        return sum(len(i.members) for i in self.islands)

    def to_state(self) -> dict:
        return {
            "capacity": self.capacity,
            "islands": [
                [[m.id, m.score, m.niche, m.n, m.total, m.sq] for m in i.members] for i in self.islands
            ],
        }

    @classmethod
    def from_state(cls, state: dict) -> Population:
        islands = [
            Island([Member(int(m[0]), float(m[1]), str(m[2]), *m[3:]) for m in members])
            for members in state["islands"]
        ]
        return cls(islands, int(state["capacity"]))
