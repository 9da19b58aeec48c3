"""How the offline generator sees an environment: a layout plus the text builders templates use."""

from __future__ import annotations

import ast
import random
from collections.abc import Callable

from scriptrl.generators import astutil as au
from scriptrl.generators.layout import EnvLayout
from scriptrl.program.parsing import parse_python


def sig(v: float, digits: int = 3) -> str:
    return au.fmt_number(v, False, digits)


class EnvView:
    """A layout plus the helpers that turn it into program text."""

    def __init__(self, layout: EnvLayout) -> None:
        self.layout = layout
        self.discrete_obs = layout.obs_kind == "discrete"
        self.index_to_pos = {c.index: i for i, c in enumerate(layout.components) if c.index is not None}
        # With a decode table the components are the decoded parts, not the state itself.
        self.obs_is_component = self.discrete_obs and layout.decode is None
        #: The parent's evaluation digest, for operators guided by its episodes (set per call).
        self.digest: dict | None = None

    def analyze(self, source: str) -> au.Analysis:
        an = au.Analysis.of(source, self.obs_is_component, self.index_to_pos)
        if self.layout.decode is not None and an.entry is not None and an.obs:
            self._find_decoded_reads(an)
        return an

    def _find_decoded_reads(self, an: au.Analysis) -> None:
        """``row = obs // 8`` binds the part ``row``, as ``x = obs[0]`` binds a component."""
        reads = {
            ast.dump(parse_python(c.read(an.obs or "obs"), mode="eval").body): i
            for i, c in enumerate(self.layout.components)
        }
        for node in au.walk_function(an.entry):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                pos = reads.get(ast.dump(node.value))
                if pos is not None:
                    an.comp_vars.setdefault(node.targets[0].id, pos)
                    an.comp_reads.add(node.value)

    def comp_of(self, an: au.Analysis, node: ast.AST) -> int | None:
        return an.comp_of(node, self.obs_is_component, self.index_to_pos)

    def comments(self, obs: str | None) -> dict[str, tuple[str, str]]:
        obs = obs or "obs"
        return {c.read(obs): (c.var, c.describe()) for c in self.layout.components}

    def render(self, an: au.Analysis, donors: tuple[str, ...] = ()) -> str:
        """The edited tree as source that keeps the original's comments and docstrings (and a
        transplanted statement's own comments, from its ``donors``)."""
        return au.render_edit(an.source, an.tree, self.comments(an.obs), donors=donors)

    def site_scale(self, an: au.Analysis, site: au.Site) -> float:
        """Typical size of a constant from what it is compared with or multiplies."""
        comps = self.layout.components
        p = site.parent
        if isinstance(p, ast.Compare):
            for operand in [p.left, *p.comparators]:
                pos = self.comp_of(an, operand)
                if pos is not None and pos < len(comps):
                    return comps[pos].scale
        if isinstance(p, ast.BinOp) and isinstance(p.op, ast.Mult | ast.Div):
            other = p.right if p.left is site.node else p.left
            pos = self.comp_of(an, other)
            if pos is not None and pos < len(comps):
                return 1.0 / comps[pos].scale if isinstance(p.op, ast.Mult) else comps[pos].scale
        return 1.0

    # -- text builders for templates --

    def threshold(self, pos: int, rng: random.Random, op: str = ">", spread: float = 0.7) -> str:
        """A threshold inside the component's typical range; for ints, one the comparison can fail."""
        c = self.layout.components[pos]
        centre = (c.lo + c.hi) / 2.0
        v = centre + rng.uniform(-spread, spread) * c.scale
        if c.integer:
            lo, hi = int(round(c.lo)), int(round(c.hi))
            if hi - lo >= 1:
                lo, hi = (lo + 1, hi) if op in (">=", "<") else (lo, hi - 1)
            return str(min(max(int(round(v)), lo), hi))
        return sig(v)

    def condition(self, pos: int, rng: random.Random, obs: str = "obs") -> str:
        c = self.layout.components[pos]
        op = rng.choice((">", "<", ">=", "<=") if c.integer else (">", "<"))
        return f"{self.layout.ref(c, obs)} {op} {self.threshold(pos, rng, op)}"

    def linear(
        self, positions: list[int], gain: float, rng: random.Random, bias: float | None
    ) -> tuple[str, float]:
        """``w1 * a + w2 * b (+ bias)`` with weights scaled to each component's range, and the
        expression's value at the centre of the typical ranges (so thresholds can split there)."""
        comps = self.layout.components
        parts, centre = [], 0.0
        for p in positions:
            w = float(sig(rng.gauss(0.0, 1.0) * gain / comps[p].scale))
            centre += w * (comps[p].lo + comps[p].hi) / 2.0
            parts.append(f"{sig(w)} * {self.layout.ref(comps[p])}")
        if bias is not None:
            parts.append(sig(bias - centre))
        return (" + ".join(parts) if parts else "0.0"), centre

    def pick(self, rng: random.Random, temperature: float) -> list[int]:
        n = len(self.layout.components)
        if n <= 12 and rng.random() < 0.5:
            return list(range(n))
        k = rng.randint(1, min(n, 3 + int(2 * temperature)))
        return sorted(rng.sample(range(n), k))

    def action_bounds(self, dim: int) -> tuple[float | None, float | None]:
        lay = self.layout
        return lay.box_low[dim], lay.box_high[dim]

    def action_scale(self, dim: int) -> float:
        """Half the range of action ``dim``: the size a gain or a step on it is measured in (1.0
        when a side is unbounded)."""
        lo, hi = self.action_bounds(dim)
        return (hi - lo) / 2.0 if lo is not None and hi is not None else 1.0

    def action_centre(self, dim: int) -> float:
        """The middle of action ``dim``'s range, a neutral bias (0.0 when a side is unbounded)."""
        lo, hi = self.action_bounds(dim)
        return (hi + lo) / 2.0 if lo is not None and hi is not None else 0.0

    def action_const(self, dim: int, rng: random.Random) -> float:
        lo, hi = self.action_bounds(dim)
        if lo is None or hi is None:
            return rng.gauss(0.0, 1.0)
        return rng.uniform(lo, hi)

    def clip(self, dim: int, expr: str) -> str:
        lo, hi = self.action_bounds(dim)
        if lo is not None and hi is not None:
            return f"min(max({expr}, {sig(lo, 6)}), {sig(hi, 6)})"
        if lo is not None:
            return f"max({expr}, {sig(lo, 6)})"
        if hi is not None:
            return f"min({expr}, {sig(hi, 6)})"
        return expr

    def clipped_box(self, expr_of: Callable[[int], str]) -> str:
        """A box program's body: each action variable set to ``expr_of(dim)`` (called in action
        order, so its random draws come in a fixed order), clipped to its bounds, all returned."""
        lines, outs = [], []
        for dim, var in enumerate(self.layout.action_vars):
            lines.append(f"{var} = {expr_of(dim)}")
            outs.append(self.clip(dim, var))
        lines.append(f"return {self.box_return(outs)}")
        return "\n".join(lines)

    def box_return(self, exprs: list[str]) -> str:
        shape = self.layout.box_shape
        if not shape:
            return exprs[0]

        def nest(items: list[str], dims: tuple[int, ...]) -> str:
            if len(dims) == 1:
                return "[" + ", ".join(items) + "]"
            step = len(items) // dims[0]
            return (
                "["
                + ", ".join(nest(items[i * step : (i + 1) * step], dims[1:]) for i in range(dims[0]))
                + "]"
            )

        return nest(exprs, shape)
