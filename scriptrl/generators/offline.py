"""The offline generator: initial programs from the environment's spaces, AST mutation, crossover.

No model and no network: programs come from a handful of readable templates (threshold
and linear rules, argmax over linear scores, clipped linear maps, lookup tables) and
are changed by small syntax-tree operators. Temperature sets how far a step goes:
near 0 it perturbs one or two constants a little; towards 1.5 it perturbs more of them,
more strongly, and prefers structural edits (conditions added, removed or replaced,
branches swapped, components exchanged), sometimes two in a row.

Every child passes ``scriptrl.program.check_source``, compiles, binds every name it reads,
still returns an action, and differs from its parent after normalisation; otherwise the
operator is retried and, when nothing works, ``None`` is returned.
"""

from __future__ import annotations

import ast
import copy
import random
import textwrap
import time
from collections.abc import Callable

from scriptrl.generators import astutil as au
from scriptrl.generators.base import Candidate, GenContext, GeneratorCall, ParentInfo, clamp_temperature
from scriptrl.generators.layout import EnvLayout, layout_for
from scriptrl.program import Program

#: Largest Discrete observation space that gets a lookup-table program.
MAX_TABLE_STATES = 1024
_ATTEMPTS = 24

_FLIP = {
    ast.Gt: ast.Lt,
    ast.Lt: ast.Gt,
    ast.GtE: ast.LtE,
    ast.LtE: ast.GtE,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
}
_SYM = {ast.Gt: ">", ast.Lt: "<", ast.GtE: ">=", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}

Result = tuple[str, str, str]  # (source, note, change)


def _sig(v: float, digits: int = 3) -> str:
    return au.fmt_number(v, False, digits)


class _Env:
    """A layout plus the helpers that turn it into program text."""

    def __init__(self, layout: EnvLayout) -> None:
        self.layout = layout
        self.discrete_obs = layout.obs_kind == "discrete"
        self.index_to_pos = {c.index: i for i, c in enumerate(layout.components) if c.index is not None}

    def analyze(self, source: str) -> au.Analysis:
        return au.Analysis.of(source, self.discrete_obs, self.index_to_pos)

    def comp_of(self, an: au.Analysis, node: ast.AST) -> int | None:
        return an.comp_of(node, self.discrete_obs, self.index_to_pos)

    def comments(self, obs: str | None) -> dict[str, tuple[str, str]]:
        obs = obs or "obs"
        return {c.read(obs): (c.var, c.describe()) for c in self.layout.components}

    def render(self, an: au.Analysis) -> str:
        return au.render_edit(an.source, an.tree, self.comments(an.obs))

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
        return _sig(v)

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
            w = float(_sig(rng.gauss(0.0, 1.0) * gain / comps[p].scale))
            centre += w * (comps[p].lo + comps[p].hi) / 2.0
            parts.append(f"{_sig(w)} * {self.layout.ref(comps[p])}")
        if bias is not None:
            parts.append(_sig(bias - centre))
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

    def action_const(self, dim: int, rng: random.Random) -> float:
        lo, hi = self.action_bounds(dim)
        if lo is None or hi is None:
            return rng.gauss(0.0, 1.0)
        return rng.uniform(lo, hi)

    def clip(self, dim: int, expr: str) -> str:
        lo, hi = self.action_bounds(dim)
        if lo is not None and hi is not None:
            return f"min(max({expr}, {_sig(lo, 6)}), {_sig(hi, 6)})"
        if lo is not None:
            return f"max({expr}, {_sig(lo, 6)})"
        if hi is not None:
            return f"min({expr}, {_sig(hi, 6)})"
        return expr

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


class OfflineMutator:
    """Templates, AST mutation and crossover; needs no model. Deterministic given ``rng``."""

    name = "offline"

    # ---------------------------------------------------------------- initial programs

    def initial(self, ctx: GenContext, n: int, temperature: float, rng: random.Random) -> list[Candidate]:
        t0 = time.perf_counter()
        temperature = clamp_temperature(temperature)
        env = _Env(layout_for(ctx))
        templates = self._templates(env)
        out: list[Candidate] = []
        seen: set[str] = set()
        tries = 0
        while len(out) < n and tries < 10 * n + 10:
            # Templates take turns, so a population starts with every kind of program.
            kind, build = templates[tries % len(templates)] if tries < 2 * n else rng.choice(templates)
            tries += 1
            body, note = build(env, rng, temperature)
            source = self._finish(env, body)
            if au.problem(source) is not None:  # pragma: no cover - templates are valid by construction
                continue
            h = Program(source).normalized_hash
            if h in seen:
                continue
            seen.add(h)
            out.append(Candidate(source, (), "offline.init", "init", temperature, note))
        per_call = (time.perf_counter() - t0) / max(1, len(out))
        for c in out:
            c.call = GeneratorCall(latency_s=per_call)
        return out

    def _templates(self, env: _Env) -> list[tuple[str, Callable]]:
        lay = env.layout
        if lay.action_kind == "discrete":
            if env.discrete_obs and lay.n_states is not None and lay.n_states <= MAX_TABLE_STATES:
                return [("table", _table)]
            return [("linear", _linear_discrete), ("rules", _rules_discrete)]
        return [("linear", _linear_box), ("rules", _rules_box)]

    def _finish(self, env: _Env, body: str) -> str:
        """Wrap template text in ``def policy(obs)`` with a docstring, then render it."""
        lay = env.layout
        if body.startswith("TABLE"):
            table, _, rest = body.partition("\n")
            doc = [f"{lay.env_id} policy: TABLE[obs] is the action to take in state obs."]
            if lay.state_meaning:
                doc.append(f"The state (obs) is the {lay.state_meaning}.")
            doc.append(f"{lay.action_legend()}.")
            code = f"{table}\n\ndef policy(obs):\n{_docstring(*doc)}\n{textwrap.indent(rest, '    ')}\n"
        else:
            doc = _docstring(f"{lay.env_id} policy.", f"{lay.action_legend()}.")
            reads = ""
            if lay.named:
                reads = "\n".join(f"{c.var} = {c.read('obs')}" for c in lay.components) + "\n"
            code = f"def policy(obs):\n{doc}\n{textwrap.indent(reads + body, '    ')}\n"
        return env.render(env.analyze(code))

    # ---------------------------------------------------------------- mutation

    def mutate(
        self, ctx: GenContext, parent: ParentInfo, temperature: float, rng: random.Random
    ) -> Candidate | None:
        t0 = time.perf_counter()
        temperature = clamp_temperature(temperature)
        env = _Env(layout_for(ctx))
        try:
            base = env.analyze(parent.source)
        except (SyntaxError, ValueError):
            return None
        allowed = au.undefined_names(base.tree)
        parent_hash = Program(parent.source).normalized_hash
        first = self._mutate_once(env, parent.source, parent_hash, allowed, temperature, rng)
        if first is None:
            return None
        source, note, change = first
        if temperature > 0.75 and rng.random() < (temperature - 0.75) / 1.5:
            second = self._mutate_once(env, source, parent_hash, allowed, temperature, rng)
            if second is not None:
                source, note = second[0], f"{note}; then {second[1]}"
                change = "structural" if "structural" in (change, second[2]) else "scalar"
        return Candidate(
            source,
            (parent.id,),
            "offline.mutate",
            change,
            temperature,
            note,
            GeneratorCall(latency_s=time.perf_counter() - t0),
        )

    def _mutate_once(
        self,
        env: _Env,
        source: str,
        avoid_hash: str,
        allowed: set[str],
        temperature: float,
        rng: random.Random,
    ) -> Result | None:
        own_hash = Program(source).normalized_hash
        p_struct = 0.2 + 0.4 * temperature / 1.5
        an = None
        for _ in range(_ATTEMPTS):
            if an is None:
                an = env.analyze(source)
            structural = rng.random() < p_struct
            ops = [(w, op) for w, op, s in _OPS if s == structural]
            weights = [w for w, _ in ops]
            op = rng.choices([o for _, o in ops], weights=weights)[0]
            if op in _TREE_OPS:
                an_used, an = an, None  # tree operators edit the analysis in place
            else:
                an_used = an
            try:
                res = op(env, an_used, temperature, rng)
            except (ValueError, IndexError, KeyError, AttributeError, TypeError, RecursionError):
                res, an = None, None
            if res is None:
                continue
            child, note = res
            if au.problem(child, allowed) is not None:
                continue
            h = Program(child).normalized_hash
            if h in (avoid_hash, own_hash):
                continue
            return child, note, "structural" if structural else "scalar"
        return None

    # ---------------------------------------------------------------- crossover

    def crossover(
        self, ctx: GenContext, a: ParentInfo, b: ParentInfo, temperature: float, rng: random.Random
    ) -> Candidate | None:
        t0 = time.perf_counter()
        temperature = clamp_temperature(temperature)
        env = _Env(layout_for(ctx))
        try:
            an_a, an_b = env.analyze(a.source), env.analyze(b.source)
        except (SyntaxError, ValueError):
            return None
        hashes = {Program(a.source).normalized_hash, Program(b.source).normalized_hash}
        if len(hashes) < 2:
            return None
        same = au.skeleton(an_a.tree) == au.skeleton(an_b.tree)
        pairs = [(a, b), (b, a)]
        for attempt in range(_ATTEMPTS):
            base, other = pairs[rng.randrange(2)] if attempt else pairs[0 if rng.random() < 0.5 else 1]
            allowed = au.undefined_names(env.analyze(base.source).tree)
            try:
                if same:
                    res = _mix_constants(env, base, other, temperature, rng)
                    change = "scalar"
                else:
                    res = _transplant(env, base, other, rng)
                    change = "structural"
            except (ValueError, IndexError, KeyError, AttributeError, TypeError, RecursionError):
                res = None
            if res is None:
                continue
            child, note = res
            if au.problem(child, allowed) is not None:
                continue
            if Program(child).normalized_hash in hashes:
                continue
            return Candidate(
                child,
                (a.id, b.id),
                "offline.crossover",
                change,
                temperature,
                note,
                GeneratorCall(latency_s=time.perf_counter() - t0),
            )
        return None


def _docstring(*paragraphs: str) -> str:
    """A docstring: one line when it fits, else a summary line and wrapped paragraphs."""
    one = " ".join(paragraphs)
    if len(one) <= 84:
        return f'    """{one}"""'
    lines = [paragraphs[0]]
    for para in paragraphs[1:]:
        lines += ["", *textwrap.wrap(para, 88)]
    body = "\n".join(f"    {line}" if line else "" for line in lines)
    return f'    """{body.lstrip()}\n    """'


# ====================================================================== templates
# Each returns (body text without the component reads, note). Numbers are written with
# any sign; rendering turns "a + -0.5 * b" into "a - 0.5 * b".


def _linear_discrete(env: _Env, rng: random.Random, t: float) -> tuple[str, str]:
    lay = env.layout
    gain = 0.5 + t
    if len(lay.actions) == 2:
        expr, centre = env.linear(env.pick(rng, t), gain, rng, None)
        lo, hi = lay.actions
        return f"score = {expr}\nreturn {hi} if score > {_sig(centre)} else {lo}", "linear threshold rule"
    lines = []
    for var in lay.action_vars:
        bias = rng.gauss(0.0, 0.3 * gain)
        lines.append(f"{var} = {env.linear(env.pick(rng, t), gain, rng, bias)[0]}")
    lines.append("scores = [" + ", ".join(lay.action_vars) + "]")
    if lay.actions[0] == 0:
        lines.append("return scores.index(max(scores))")
    else:
        lines.append(f"return {list(lay.actions)!r}[scores.index(max(scores))]")
    return "\n".join(lines), f"argmax over {len(lay.actions)} linear scores"


def _rules_discrete(env: _Env, rng: random.Random, t: float) -> tuple[str, str]:
    lay = env.layout
    n = len(lay.components)
    lines = []
    default = rng.choice(lay.actions)
    others = [a for a in lay.actions if a != default] or [default]
    k = rng.randint(1, 2 + int(t * 2))
    for _ in range(k):
        first = rng.randrange(n)
        cond = env.condition(first, rng)
        if n > 1 and rng.random() < 0.2 + 0.2 * t:
            cond += f" and {env.condition(rng.choice([p for p in range(n) if p != first]), rng)}"
        lines.append(f"if {cond}:\n    return {rng.choice(others)}")
    lines.append(f"return {default}")
    return "\n".join(lines), f"{k} threshold rule{'s' if k > 1 else ''}"


def _table(env: _Env, rng: random.Random, t: float) -> tuple[str, str]:
    lay = env.layout
    n = lay.n_states or 1
    if rng.random() < 0.2:
        values = [rng.choice(lay.actions)] * n
        for i in rng.sample(range(n), max(1, n // 8)):
            values[i] = rng.choice(lay.actions)
    else:
        values = [rng.choice(lay.actions) for _ in range(n)]
    return f"TABLE = {values!r}\nreturn TABLE[obs]", f"lookup table over {n} states"


def _linear_box(env: _Env, rng: random.Random, t: float) -> tuple[str, str]:
    lay = env.layout
    lines, outs = [], []
    for dim, var in enumerate(lay.action_vars):
        lo, hi = env.action_bounds(dim)
        gain = (0.5 + t) * ((hi - lo) / 2 if lo is not None and hi is not None else 1.0)
        centre = (lo + hi) / 2 if lo is not None and hi is not None else 0.0
        bias = centre + rng.gauss(0.0, 0.2) * gain
        lines.append(f"{var} = {env.linear(env.pick(rng, t), gain, rng, bias)[0]}")
        outs.append(env.clip(dim, var))
    lines.append(f"return {env.box_return(outs)}")
    return "\n".join(lines), "clipped linear map"


def _rules_box(env: _Env, rng: random.Random, t: float) -> tuple[str, str]:
    lay = env.layout
    n = len(lay.components)
    lines = [f"{var} = {_sig(env.action_const(d, rng))}" for d, var in enumerate(lay.action_vars)]
    k = rng.randint(1, 2 + int(t * 2))
    for _ in range(k):
        d = rng.randrange(len(lay.action_vars))
        lines.append(
            f"if {env.condition(rng.randrange(n), rng)}:\n    {lay.action_vars[d]} = {_sig(env.action_const(d, rng))}"
        )
    lines.append(f"return {env.box_return([env.clip(d, v) for d, v in enumerate(lay.action_vars)])}")
    return "\n".join(lines), f"{k} threshold rule{'s' if k > 1 else ''} setting constant actions"


# ====================================================================== mutation operators
# Each takes (env, analysis, temperature, rng) and returns (child source, note) or None.


def _op_perturb(env: _Env, an: au.Analysis, t: float, rng: random.Random):
    idx = [i for i, s in enumerate(an.sites) if s.role == "tunable"]
    if not idx:
        return None
    p = min(1.0, (0.5 + 2.5 * t) / len(idx))  # about 0.5 + 2.5 t constants, at least one
    chosen = [i for i in idx if rng.random() < p] or [rng.choice(idx)]
    changes: dict[int, float] = {}
    words = []
    for i in chosen:
        s = an.sites[i]
        v = float(s.value)
        if s.is_int:
            step = round(rng.gauss(0.0, 0.6 + 2.0 * t) * max(1.0, 0.1 * abs(v)))
            new = v + (step or rng.choice((-1, 1)))
        else:
            scale = env.site_scale(an, s)
            new = v * (1.0 + rng.gauss(0.0, 0.05 + 0.35 * t)) + rng.gauss(0.0, (0.02 + 0.2 * t) * scale)
            if rng.random() < 0.08 * t:
                new = -new
        changes[i] = new
        words.append(f"line {s.line}: {au.fmt_number(v, s.is_int)} -> {au.fmt_number(new, s.is_int)}")
    child = au.write_numbers(an.source, an, changes)
    head = "perturbed 1 constant" if len(chosen) == 1 else f"perturbed {len(chosen)} constants"
    shown = "; ".join(words[:4]) + ("; ..." if len(words) > 4 else "")
    return child, f"{head} ({shown})"


def _action_sites(env: _Env, an: au.Analysis) -> list[int]:
    acts = env.layout.actions
    if env.layout.action_kind != "discrete" or len(acts) < 2:
        return []
    return [i for i, s in enumerate(an.sites) if s.role == "action" and s.value in acts]


def _op_change_action(env: _Env, an: au.Analysis, t: float, rng: random.Random):
    idx = _action_sites(env, an)
    if not idx:
        return None
    i = rng.choice(idx)
    s = an.sites[i]
    new = rng.choice([a for a in env.layout.actions if a != s.value])
    return au.write_numbers(
        an.source, an, {i: new}
    ), f"changed the action on line {s.line}: {s.value} -> {new}"


def _tables(env: _Env, an: au.Analysis) -> list[list[int]]:
    """Site indices of each lookup table whose entries are all valid actions."""
    if env.layout.action_kind != "discrete" or len(env.layout.actions) < 2:
        return []
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(an.sites):
        if s.role == "table" and s.parent is not None:
            groups.setdefault(id(s.parent), []).append(i)
    acts = set(env.layout.actions)
    return [g for g in groups.values() if len(g) >= 4 and all(an.sites[i].value in acts for i in g)]


def _op_table_edit(env: _Env, an: au.Analysis, t: float, rng: random.Random):
    tables = _tables(env, an)
    if not tables:
        return None
    g = max(tables, key=len) if rng.random() < 0.8 else rng.choice(tables)
    p = 0.01 + 0.06 * t
    m = 1 + sum(rng.random() < p for _ in range(len(g) - 1))
    picks = sorted(rng.sample(range(len(g)), min(m, len(g))))
    changes = {}
    for k in picks:
        old = an.sites[g[k]].value
        changes[g[k]] = rng.choice([a for a in env.layout.actions if a != old])
    shown = ", ".join(f"[{k}] {an.sites[g[k]].value}->{int(changes[g[k]])}" for k in picks[:6])
    more = ", ..." if len(picks) > 6 else ""
    return au.write_numbers(an.source, an, changes), f"changed {len(picks)} table entries ({shown}{more})"


def _op_table_block(env: _Env, an: au.Analysis, t: float, rng: random.Random):
    tables = _tables(env, an)
    if not tables:
        return None
    g = max(tables, key=len)
    length = rng.randint(2, max(2, int(len(g) * (0.05 + 0.15 * t))))
    start = rng.randrange(0, len(g) - length + 1)
    action = rng.choice(env.layout.actions)
    changes = {g[k]: action for k in range(start, start + length) if an.sites[g[k]].value != action}
    if not changes:
        return None
    return (
        au.write_numbers(an.source, an, changes),
        f"set table entries {start}..{start + length - 1} to action {action}",
    )


def _op_flip_compare(env: _Env, an: au.Analysis, t: float, rng: random.Random):
    cands = []
    for node in ast.walk(an.tree):
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in _FLIP:
                    cands.append((node, k))
    if not cands:
        return None
    node, k = rng.choice(cands)
    st = au.SourceText(an.source)
    left = node.left if k == 0 else node.comparators[k - 1]
    right = node.comparators[k]
    a = st.offset(left.end_lineno, left.end_col_offset)
    b = st.span(right)[0]
    gap = an.source[a:b]
    old, new = _SYM[type(node.ops[k])], _SYM[_FLIP[type(node.ops[k])]]
    if "#" in gap or gap.replace("(", "").replace(")", "").strip() != old:
        return None
    child = au.apply_edits(an.source, [(a, b, gap.replace(old, new, 1))])
    return child, f"flipped the comparison on line {node.lineno} ({old} to {new})"


def _entry_nodes(an: au.Analysis) -> list[ast.AST]:
    return list(au.walk_function(an.entry)) if an.entry is not None else []


def _op_swap_branches(env: _Env, an: au.Analysis, t: float, rng: random.Random):
    cands = [n for n in _entry_nodes(an) if (isinstance(n, ast.If) and n.orelse) or isinstance(n, ast.IfExp)]
    if not cands:
        return None
    node = rng.choice(cands)
    node.body, node.orelse = node.orelse, node.body  # type: ignore[union-attr]
    if isinstance(node, ast.IfExp) and ast.dump(node.body) == ast.dump(node.orelse):
        return None
    return env.render(an), f"swapped the branches of the condition on line {node.lineno}"


def _comp_ref(env: _Env, an: au.Analysis, pos: int) -> ast.expr:
    names = sorted(v for v, p in an.comp_vars.items() if p == pos)
    comp = env.layout.components[pos]
    if comp.var in names:
        return ast.Name(id=comp.var, ctx=ast.Load())
    if names:
        return ast.Name(id=names[0], ctx=ast.Load())
    return ast.parse(comp.read(an.obs or "obs"), mode="eval").body


def _new_condition(env: _Env, an: au.Analysis, rng: random.Random) -> ast.expr:
    pos = rng.randrange(len(env.layout.components))
    comp = env.layout.components[pos]
    op = rng.choice([ast.Gt, ast.Lt, ast.GtE, ast.LtE] if comp.integer else [ast.Gt, ast.Lt])
    value = float(env.threshold(pos, rng, _SYM[op]))
    return ast.Compare(
        left=_comp_ref(env, an, pos), ops=[op()], comparators=[au.num_node(value, comp.integer, 3)]
    )


def _block_of(an: au.Analysis, node: ast.stmt) -> tuple[list[ast.stmt], int] | None:
    p = an.parents.get(node)
    for field in ("body", "orelse", "finalbody"):
        block = getattr(p, field, None)
        if isinstance(block, list):
            for i, s in enumerate(block):
                if s is node:
                    return block, i
    return None


def _action_vars(env: _Env, an: au.Analysis) -> list[str]:
    """Variables that make up the returned action of a Box policy (assigned in the policy, not components)."""
    rets = an.returns()
    if not rets:
        return []
    read = {n.id for n in ast.walk(rets[-1].value) if isinstance(n, ast.Name)}
    assigned = {
        n.targets[0].id
        for n in _entry_nodes(an)
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
    }
    return sorted((read & assigned) - set(an.comp_vars))


def _op_add_condition(env: _Env, an: au.Analysis, t: float, rng: random.Random):
    lay = env.layout
    if not lay.components or an.entry is None or (env.discrete_obs and _tables(env, an)):
        return None  # a rule in front of a lookup table only hides table entries
    cond = _new_condition(env, an, rng)
    if lay.action_kind == "discrete":
        rets = an.returns()
        if not rets:
            return None
        ret = rng.choice(rets)
        where = _block_of(an, ret)
        if where is None:
            return None
        block, i = where
        current = ret.value.value if isinstance(ret.value, ast.Constant) else None
        action = rng.choice([a for a in lay.actions if a != current] or list(lay.actions))
        block.insert(i, ast.If(test=cond, body=[ast.Return(value=ast.Constant(value=action))], orelse=[]))
        return env.render(an), f"added `if {ast.unparse(cond)}: return {action}` before line {ret.lineno}"
    names = _action_vars(env, an)
    rets = an.returns()
    if not names or not rets:
        return None
    ret = rets[-1]
    where = _block_of(an, ret)
    if where is None:
        return None
    block, i = where
    var = rng.choice(names)
    dim = lay.action_vars.index(var) if var in lay.action_vars else 0
    lo, hi = env.action_bounds(dim)
    half = (hi - lo) / 2 if lo is not None and hi is not None else 1.0
    if rng.random() < 0.5:
        value: ast.expr = au.num_node(env.action_const(dim, rng), digits=3)
    else:
        pos = rng.randrange(len(lay.components))
        w = rng.gauss(0.0, 0.5 + t) * half / lay.components[pos].scale
        term = ast.BinOp(left=au.num_node(w, digits=3), op=ast.Mult(), right=_comp_ref(env, an, pos))
        value = ast.BinOp(left=ast.Name(id=var, ctx=ast.Load()), op=ast.Add(), right=term)
    assign = ast.Assign(targets=[ast.Name(id=var, ctx=ast.Store())], value=value)
    block.insert(i, ast.If(test=cond, body=[assign], orelse=[]))
    return env.render(an), f"added `if {ast.unparse(cond)}: {ast.unparse(assign)}` before line {ret.lineno}"


def _replace_child(parent: ast.AST, old: ast.AST, new: ast.AST) -> bool:
    for field, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, field, new)
            return True
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    value[i] = new
                    return True
    return False


def _op_remove_condition(env: _Env, an: au.Analysis, t: float, rng: random.Random):
    nodes = _entry_nodes(an)
    ifs = [n for n in nodes if isinstance(n, ast.If)]
    bools = [
        n for n in nodes if isinstance(n, ast.BoolOp) and isinstance(an.parents.get(n), ast.If | ast.IfExp)
    ]
    cands: list[ast.AST] = ifs + bools
    if not cands:
        return None
    node = rng.choice(cands)
    if isinstance(node, ast.BoolOp):
        k = rng.randrange(len(node.values))
        dropped = node.values.pop(k)
        if len(node.values) == 1:
            _replace_child(an.parents[node], node, node.values[0])
        return env.render(an), f"dropped `{ast.unparse(dropped)}` from the condition on line {node.lineno}"
    where = _block_of(an, node)
    if where is None:
        return None
    block, i = where
    if node.orelse:
        keep = rng.choice(["body", "orelse"])
        block[i : i + 1] = getattr(node, keep)
        what = "kept only its if-branch" if keep == "body" else "kept only its else-branch"
        return env.render(
            an
        ), f"removed the condition `{ast.unparse(node.test)}` on line {node.lineno} ({what})"
    if i < len(block) - 1:
        del block[i]
        return env.render(an), f"removed the rule `if {ast.unparse(node.test)}` on line {node.lineno}"
    block[i : i + 1] = node.body
    return env.render(an), f"made the rule on line {node.lineno} unconditional"


def _op_replace_condition(env: _Env, an: au.Analysis, t: float, rng: random.Random):
    if not env.layout.components:
        return None
    cands = [n for n in _entry_nodes(an) if isinstance(n, ast.If | ast.IfExp)]
    if not cands or (env.discrete_obs and _tables(env, an)):
        return None
    node = rng.choice(cands)
    old = ast.unparse(node.test)
    node.test = _new_condition(env, an, rng)
    return env.render(
        an
    ), f"replaced the condition `{old}` on line {node.lineno} by `{ast.unparse(node.test)}`"


def _op_change_component(env: _Env, an: au.Analysis, t: float, rng: random.Random):
    comps = env.layout.components
    if len(comps) < 2 or an.entry is None:
        return None
    refs = []
    for n in _entry_nodes(an):
        if n in an.comp_reads:
            continue
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in an.comp_vars:
            refs.append((n, an.comp_vars[n.id]))
        elif isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load):
            pos = env.comp_of(an, n)
            if pos is not None:
                refs.append((n, pos))
    if not refs:
        return None
    node, pos = rng.choice(refs)
    new_pos = rng.choice([p for p in range(len(comps)) if p != pos])
    st = au.SourceText(an.source)
    old_text = st.text(node)
    new_text = ast.unparse(_comp_ref(env, an, new_pos))
    edits = [(*st.span(node), new_text)]
    # Carry the number that goes with it over to the new component's range:
    # a threshold keeps its relative position, a weight its effect on the sum.
    old_c, new_c = comps[pos], comps[new_pos]
    parent = an.parents.get(node)
    site_at = {id(x.node): x for x in an.sites}
    rescaled = ""
    if isinstance(parent, ast.Compare):
        for operand in [parent.left, *parent.comparators]:
            site = site_at.get(id(operand))
            if site is not None and site.role == "tunable":
                rel = (site.value - (old_c.lo + old_c.hi) / 2) / old_c.scale
                value = (new_c.lo + new_c.hi) / 2 + rel * new_c.scale
                edits += au.number_edits(st, site, value, an.parents)
                shown = au.fmt_number(value, site.is_int)
                rescaled = f", threshold {au.fmt_number(site.value, site.is_int)} -> {shown}"
                break
    elif isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Mult):
        other = parent.left if parent.right is node else parent.right
        site = site_at.get(id(other))
        if site is not None and site.role == "tunable" and not site.is_int:
            edits += au.number_edits(st, site, site.value * old_c.scale / new_c.scale, an.parents)
            rescaled = ", weight rescaled to its range"
    child = au.apply_edits(an.source, edits)
    return child, f"line {node.lineno}: reads {new_text} instead of {old_text}{rescaled}"


def _numeric_assigns(env: _Env, an: au.Analysis) -> list[ast.Assign]:
    returned = {
        n.value.id for n in _entry_nodes(an) if isinstance(n, ast.Return) and isinstance(n.value, ast.Name)
    }
    out = []
    for n in _entry_nodes(an):
        if not (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)):
            continue
        name = n.targets[0].id
        if name in an.comp_vars or (env.layout.action_kind == "discrete" and name in returned):
            continue
        v = n.value
        if not isinstance(v, ast.BinOp | ast.UnaryOp | ast.Constant | ast.Name):
            continue
        if isinstance(v, ast.Constant) and type(v.value) is not float:
            continue
        if not any(isinstance(x, ast.Constant) and type(x.value) is float for x in ast.walk(v)) and not any(
            env.comp_of(an, x) is not None for x in ast.walk(v)
        ):
            continue
        if any(
            isinstance(x, ast.Call | ast.List | ast.Tuple | ast.Compare | ast.BoolOp) for x in ast.walk(v)
        ):
            continue
        out.append(n)
    return out


def _op_add_term(env: _Env, an: au.Analysis, t: float, rng: random.Random):
    lay = env.layout
    if not lay.components:
        return None
    cands = _numeric_assigns(env, an)
    if not cands:
        return None
    node = rng.choice(cands)
    used = {env.comp_of(an, x) for x in ast.walk(node.value)}
    free = [p for p in range(len(lay.components)) if p not in used] or list(range(len(lay.components)))
    pos = rng.choice(free)
    name = node.targets[0].id  # type: ignore[attr-defined]
    half = 1.0
    if lay.action_kind == "box" and name in lay.action_vars:
        lo, hi = env.action_bounds(lay.action_vars.index(name))
        half = (hi - lo) / 2 if lo is not None and hi is not None else 1.0
    w = rng.gauss(0.0, 0.3 + 0.5 * t) * half / lay.components[pos].scale
    term = ast.BinOp(left=au.num_node(w, digits=3), op=ast.Mult(), right=_comp_ref(env, an, pos))
    terms: list[tuple[int, ast.expr]] = []
    _flatten(node.value, 1, terms)
    node.value = _rebuild([*terms, (1, term)])
    return env.render(an), f"line {node.lineno}: added the term {ast.unparse(term)} to {name}"


def _flatten(node: ast.expr, sign: int, out: list[tuple[int, ast.expr]]) -> None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        _flatten(node.left, sign, out)
        _flatten(node.right, sign if isinstance(node.op, ast.Add) else -sign, out)
    else:
        out.append((sign, node))


def _negate(e: ast.expr) -> ast.expr:
    if au.is_signed_number(e):
        v = au.signed_value(e)
        return au.num_node(-v, type(v) is int, 12)
    if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Mult | ast.Div) and au.is_signed_number(e.left):
        return ast.BinOp(left=_negate(e.left), op=e.op, right=e.right)
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub):
        return e.operand
    return ast.UnaryOp(op=ast.USub(), operand=e)


def _rebuild(terms: list[tuple[int, ast.expr]]) -> ast.expr:
    """A sum from signed terms, constants last: ``a * x - b * y + c``."""
    terms = [t for t in terms if not au.is_signed_number(t[1])] + [
        t for t in terms if au.is_signed_number(t[1])
    ]
    sign, first = terms[0]
    acc: ast.expr = first if sign > 0 else _negate(first)
    for s, e in terms[1:]:
        acc = ast.BinOp(left=acc, op=ast.Add() if s > 0 else ast.Sub(), right=e)
    return acc


def _op_remove_term(env: _Env, an: au.Analysis, t: float, rng: random.Random):
    roots = [
        n
        for n in _entry_nodes(an)
        if isinstance(n, ast.BinOp)
        and isinstance(n.op, ast.Add | ast.Sub)
        and not (isinstance(an.parents.get(n), ast.BinOp) and isinstance(an.parents[n].op, ast.Add | ast.Sub))
    ]
    cands = []
    for r in roots:
        terms: list[tuple[int, ast.expr]] = []
        _flatten(r, 1, terms)
        removable = [
            k for k, (_, e) in enumerate(terms) if any(env.comp_of(an, x) is not None for x in ast.walk(e))
        ]
        if len(terms) >= 2 and removable:
            cands.append((r, terms, removable))
    if not cands:
        return None
    root, terms, removable = rng.choice(cands)
    k = rng.choice(removable)
    dropped = terms.pop(k)[1]
    acc = _rebuild(terms)
    if not _replace_child(an.parents[root], root, acc):
        return None
    return env.render(an), f"line {root.lineno}: removed the term {ast.unparse(dropped)}"


# (weight, operator, structural?)
_OPS: list[tuple[float, Callable, bool]] = [
    (4.0, _op_perturb, False),
    (1.0, _op_change_action, False),
    (4.0, _op_table_edit, False),
    (1.0, _op_flip_compare, True),
    (1.0, _op_swap_branches, True),
    (1.5, _op_add_condition, True),
    (1.0, _op_remove_condition, True),
    (1.0, _op_replace_condition, True),
    (1.5, _op_change_component, True),
    (1.0, _op_add_term, True),
    (1.0, _op_remove_term, True),
    (2.0, _op_table_block, True),
]
_TREE_OPS = {
    _op_swap_branches,
    _op_add_condition,
    _op_remove_condition,
    _op_replace_condition,
    _op_add_term,
    _op_remove_term,
}


# ====================================================================== crossover


def _mix_constants(env: _Env, base: ParentInfo, other: ParentInfo, t: float, rng: random.Random):
    """Same structure: take each differing number from either parent (floats sometimes blended)."""
    an_a, an_b = env.analyze(base.source), env.analyze(other.source)
    if len(an_a.sites) != len(an_b.sites):
        return None
    diff = [i for i, (x, y) in enumerate(zip(an_a.sites, an_b.sites, strict=True)) if x.value != y.value]
    if not diff:
        return None
    changes: dict[int, float] = {}
    # Lookup tables: one- or two-point crossover keeps neighbouring states together.
    tables = _tables(env, an_a)
    in_table = {i for g in tables for i in g}
    notes = []
    for g in tables:
        if rng.random() < 0.5:
            cut = (
                sorted(rng.sample(range(1, len(g)), min(2, len(g) - 1)))
                if rng.random() < 0.5
                else [rng.randrange(1, len(g))]
            )
            lo, hi = (cut[0], cut[1]) if len(cut) == 2 else (cut[0], len(g))
            for k in range(lo, hi):
                changes[g[k]] = an_b.sites[g[k]].value
            notes.append(f"table entries {lo}..{hi - 1} from #{other.id}")
        else:
            picked = [k for k in range(len(g)) if rng.random() < 0.5]
            for k in picked:
                changes[g[k]] = an_b.sites[g[k]].value
            notes.append(f"uniform table crossover ({len(picked)} entries from #{other.id})")
    blended = taken = 0
    for i in diff:
        if i in in_table:
            continue
        x, y = an_a.sites[i], an_b.sites[i]
        r = rng.random()
        if x.role == "tunable" and not x.is_int and r < 0.3 * t:
            u = rng.random()
            changes[i] = x.value + u * (y.value - x.value)
            blended += 1
        elif r < 0.5:
            changes[i] = y.value
            taken += 1
    effective = [i for i in diff if i in changes and changes[i] != an_a.sites[i].value]
    if not effective:
        i = rng.choice(diff)
        changes[i] = an_b.sites[i].value
        taken += 1
    elif all(i in changes and changes[i] == an_b.sites[i].value for i in diff):
        i = rng.choice(diff)
        changes.pop(i)
    changes = {i: v for i, v in changes.items() if v != an_a.sites[i].value}
    if taken or blended:
        notes.insert(0, f"{taken} constants from #{other.id}" + (f", {blended} blended" if blended else ""))
    return au.write_numbers(
        base.source, an_a, changes
    ), f"mixed constants of #{base.id} and #{other.id}: " + "; ".join(notes)


def _stmt_key(s: ast.stmt) -> tuple | None:
    if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
        return ("assign", s.targets[0].id)
    if isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Name):
        return ("aug", s.target.id)
    if isinstance(s, ast.Return):
        return ("return",)
    if isinstance(s, ast.FunctionDef):
        return ("def", s.name)
    return None


def _transplant(env: _Env, base: ParentInfo, other: ParentInfo, rng: random.Random):
    """Different structure: replace one statement of ``base`` by ``other``'s, or insert one of its rules."""
    an_a, an_b = env.analyze(base.source), env.analyze(other.source)
    if an_a.entry is None or an_b.entry is None:
        return None
    bound = au.names_bound(an_a.tree)
    moves: list[tuple[str, object, object]] = []
    for scope_a, scope_b in ((an_a.entry.body, an_b.entry.body), (an_a.tree.body, an_b.tree.body)):
        by_key: dict[tuple, list[ast.stmt]] = {}
        for s in scope_b:
            k = _stmt_key(s)
            if k is not None and k != ("def", "policy"):
                by_key.setdefault(k, []).append(s)
        for i, s in enumerate(scope_a):
            k = _stmt_key(s)
            for sb in by_key.get(k, []) if k is not None else []:
                if ast.dump(s) != ast.dump(sb):
                    moves.append(("replace", (scope_a, i), sb))
    rules = [
        s
        for s in an_b.entry.body
        if isinstance(s, ast.If) and any(isinstance(x, ast.Return) for x in ast.walk(s))
    ]
    body = an_a.entry.body
    first = next(
        (i for i, s in enumerate(body) if not (au._is_docstring(s) or _reads_component(an_a, s))), len(body)
    )
    positions = list(range(first, len(body))) if body and isinstance(body[-1], ast.Return) else []
    for r in rules:
        if positions:
            moves.append(("insert", r, positions))
    conds_b = [n for n in au.walk_function(an_b.entry) if isinstance(n, ast.Compare)]
    for n in au.walk_function(an_a.entry):
        if isinstance(n, ast.Compare) and isinstance(an_a.parents.get(n), ast.If | ast.IfExp | ast.BoolOp):
            for c in conds_b:
                if ast.dump(c) != ast.dump(n):
                    moves.append(("condition", n, c))
    rng.shuffle(moves)
    # Half of the time, first try mixing the terms of a linear expression both parents define.
    if rng.random() < 0.5:
        res = _term_crossover(env, an_a, an_b, base, other, rng)
        if res is not None:
            return res
    for kind, x, y in moves:
        stmt = y if kind in ("replace", "condition") else x
        if not _names_ok(stmt, bound):  # type: ignore[arg-type]
            continue
        new = copy.deepcopy(stmt)
        if kind == "condition":
            if not _replace_child(an_a.parents[x], x, new):  # type: ignore[index]
                continue
            note = f"took the condition `{_short(new)}` from #{other.id} for line {x.lineno} of #{base.id}"  # type: ignore[attr-defined]
            return env.render(an_a), note
        if kind == "replace":
            scope, i = x  # type: ignore[misc]
            old = scope[i]
            scope[i] = new
            note = f"took `{_short(new)}` from #{other.id} in place of line {old.lineno} of #{base.id}"
        else:
            if any(ast.dump(new) == ast.dump(s) for s in body):
                continue
            pos = rng.choice(y)  # type: ignore[arg-type]
            body.insert(pos, new)
            note = f"inserted the rule `if {ast.unparse(new.test)}` of #{other.id} into #{base.id}"  # type: ignore[attr-defined]
        return env.render(an_a), note
    return _term_crossover(env, an_a, an_b, base, other, rng)


def _terms_by_component(env: _Env, an: au.Analysis, expr: ast.expr) -> dict[object, tuple[int, ast.expr]]:
    terms: list[tuple[int, ast.expr]] = []
    _flatten(expr, 1, terms)
    out: dict[object, tuple[int, ast.expr]] = {}
    for k, (sign, e) in enumerate(terms):
        comps = {env.comp_of(an, x) for x in ast.walk(e)} - {None}
        key: object = next(iter(comps)) if len(comps) == 1 else ("other", k)
        if key in out:
            key = ("other", k)
        out[key] = (sign, e)
    return out


def _term_crossover(
    env: _Env, an_a: au.Analysis, an_b: au.Analysis, base: ParentInfo, other: ParentInfo, rng
):
    """For an assignment both parents make, take each component's term from either parent."""
    assigns_b = {
        s.targets[0].id: s
        for s in au.walk_function(an_b.entry)
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
    }
    pairs = []
    for s in au.walk_function(an_a.entry):
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
            sb = assigns_b.get(s.targets[0].id)
            if sb is not None and s.value not in an_a.comp_reads and ast.dump(s.value) != ast.dump(sb.value):
                ta, tb = _terms_by_component(env, an_a, s.value), _terms_by_component(env, an_b, sb.value)
                if len(ta) + len(tb) >= 3 and any(isinstance(k, int) for k in [*ta, *tb]):
                    pairs.append((s, ta, tb))
    if not pairs:
        return None
    s, ta, tb = rng.choice(pairs)
    bound = au.names_bound(an_a.tree)
    keys = list(dict.fromkeys([*ta, *tb]))
    for _ in range(8):
        chosen: list[tuple[int, ast.expr]] = []
        from_b = 0
        for k in keys:
            options = [("a", ta[k])] if k in ta else []
            if k in tb and _names_ok(tb[k][1], bound):
                options.append(("b", tb[k]))
            if len(options) == 1 and rng.random() < 0.3:
                continue  # a term only one parent has is inherited half the time
            if options:
                side, term = rng.choice(options)
                from_b += side == "b"
                chosen.append(term)
        if not chosen or not from_b:
            continue
        acc = _rebuild([(sg, copy.deepcopy(e)) for sg, e in chosen])
        if ast.dump(acc) in (ast.dump(s.value), ast.dump(assigns_b[s.targets[0].id].value)):
            continue
        s.value = acc
        name = s.targets[0].id  # type: ignore[attr-defined]
        return env.render(
            an_a
        ), f"{name}: mixed the terms of #{base.id} and #{other.id} ({from_b} from #{other.id})"
    return None


def _reads_component(an: au.Analysis, s: ast.stmt) -> bool:
    return isinstance(s, ast.Assign) and (
        s.value in an.comp_reads or (isinstance(s.value, ast.Name) and s.value.id == an.obs)
    )


def _names_ok(stmt: ast.AST, bound: set[str]) -> bool:
    loaded = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    local = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    local |= {a.arg for a in ast.walk(stmt) if isinstance(a, ast.arg)}
    return loaded <= bound | local


def _short(node: ast.AST, limit: int = 70) -> str:
    text = ast.unparse(node).split("\n")[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."
