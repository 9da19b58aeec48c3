"""The offline generator: initial programs, mutation and crossover behind the ``Generator`` protocol."""

from __future__ import annotations

import ast
import random
import textwrap
import time
from collections.abc import Callable

from scriptrl.generators import astutil as au
from scriptrl.generators.base import (
    Candidate,
    GenContext,
    GeneratorBase,
    GeneratorCall,
    ParentInfo,
    clamp_temperature,
)
from scriptrl.generators.layout import layout_for
from scriptrl.generators.offline.controllers import (
    nonlinear_box,
    nonlinear_discrete,
    oblique_tree,
    pd_box,
    pd_discrete,
)
from scriptrl.generators.offline.crossover import mix_constants, transplant
from scriptrl.generators.offline.decoded import can_seek, place_rules, seeded_table
from scriptrl.generators.offline.env_view import EnvView
from scriptrl.generators.offline.family_ops import op_add_feature, op_flip_law, op_grow_tree, op_scale_law
from scriptrl.generators.offline.feedback import feedback_fits, feedback_start
from scriptrl.generators.offline.guided import op_table_guided
from scriptrl.generators.offline.phase import graft_phase, join_under_split, phase_machine
from scriptrl.generators.offline.scalar_ops import op_change_action, op_perturb, op_table_block, op_table_edit
from scriptrl.generators.offline.structural_ops import (
    op_add_condition,
    op_add_term,
    op_change_component,
    op_flip_compare,
    op_remove_condition,
    op_remove_term,
    op_replace_condition,
    op_swap_branches,
)
from scriptrl.generators.offline.switching import SWITCHING_VARIANTS, find_switch, switching_fits
from scriptrl.generators.offline.templates import (
    docstring,
    linear_box,
    linear_discrete,
    rules_box,
    rules_discrete,
    table,
)
from scriptrl.generators.offline.tree_edit import table_groups
from scriptrl.program import Program

#: Largest Discrete observation space that gets a lookup-table program.
MAX_TABLE_STATES = 1024
ATTEMPTS = 24

Result = tuple[str, str, str]  # (source, note, change)
#: With more components than this, initial programs read only the ones they use (shorter programs).
PRUNE_READS_ABOVE = 12


def _drop_unused_reads(an: au.Analysis) -> None:
    """Remove ``name = obs[k]`` lines whose name the program never reads."""
    if an.entry is None:
        return
    loaded = {n.id for n in ast.walk(an.tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    an.entry.body = [
        s
        for s in an.entry.body
        if not (
            isinstance(s, ast.Assign)
            and s.value in an.comp_reads
            and isinstance(s.targets[0], ast.Name)
            and s.targets[0].id not in loaded
        )
    ]


class OfflineMutator(GeneratorBase):
    """Templates, AST mutation and crossover; needs no model. Deterministic given ``rng``."""

    name = "offline"

    # ---------------------------------------------------------------- initial programs

    def initial(self, ctx: GenContext, n: int, temperature: float, rng: random.Random) -> list[Candidate]:
        t0 = time.perf_counter()
        temperature = clamp_temperature(temperature)
        env = EnvView(layout_for(ctx))
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

    def _templates(self, env: EnvView) -> list[tuple[str, Callable]]:
        lay = env.layout
        if lay.action_kind == "discrete":
            if env.discrete_obs and lay.n_states is not None and lay.n_states <= MAX_TABLE_STATES:
                if not can_seek(lay):
                    return [("table", table)]
                # Decoded grids: tables seeded by place rules get rewards a random table never sees.
                return [
                    ("table", table),
                    ("seeded table", seeded_table),
                    ("place rules", place_rules),
                    ("seeded table", seeded_table),
                    ("rules", rules_discrete),
                    ("seeded table", seeded_table),
                ]
            if env.discrete_obs:
                return [("linear", linear_discrete), ("rules", rules_discrete)]
            return [
                ("linear", linear_discrete),
                ("rules", rules_discrete),
                ("nonlinear", nonlinear_discrete),
                ("pd", pd_discrete),
                ("tree", oblique_tree),
                ("phases", phase_machine),
            ]
        if switching_fits(lay):
            return _switching_starts()
        # Linear maps stay the most frequent start: they are the cheapest to tune. A sparse
        # linear map cannot gain a reading it lacks (CMA-ES only moves constants), so where the
        # observation is small enough a dense feedback law over every reading starts too; it
        # comes second so that even a small population gets it (it is one program: all zeros).
        feedback = [("feedback", feedback_start)] if feedback_fits(lay) else []
        return [
            ("linear", linear_box),
            *feedback,
            ("tree", oblique_tree),
            ("linear", linear_box),
            ("rules", rules_box),
            ("linear", linear_box),
            ("pd", pd_box),
            ("nonlinear", nonlinear_box),
            ("phases", phase_machine),
        ]

    def _finish(self, env: EnvView, body: str) -> str:
        """Wrap template text in ``def policy(obs)`` with a docstring, then render it."""
        lay = env.layout
        if body.startswith(("class ", "def ")):  # a whole program with its own docstring
            code = body
        elif body.startswith("TABLE"):
            table, _, rest = body.partition("\n")
            lines = [f"{lay.env_id} policy: TABLE[obs] is the action to take in state obs."]
            if lay.state_meaning:
                lines.append(f"The state (obs) is the {lay.state_meaning}.")
            lines.append(f"{lay.action_legend()}.")
            code = f"{table}\n\ndef policy(obs):\n{docstring(*lines)}\n{textwrap.indent(rest, '    ')}\n"
        else:
            doc = docstring(f"{lay.env_id} policy.", f"{lay.action_legend()}.")
            reads = ""
            if lay.named:
                reads = "\n".join(f"{c.var} = {c.read('obs')}" for c in lay.components) + "\n"
            code = f"def policy(obs):\n{doc}\n{textwrap.indent(reads + body, '    ')}\n"
        an = env.analyze(code)
        if len(lay.components) > PRUNE_READS_ABOVE:
            _drop_unused_reads(an)
        return env.render(an)

    # ---------------------------------------------------------------- mutation

    def mutate(
        self, ctx: GenContext, parent: ParentInfo, temperature: float, rng: random.Random
    ) -> Candidate | None:
        t0 = time.perf_counter()
        temperature = clamp_temperature(temperature)
        env = EnvView(layout_for(ctx))
        env.digest = parent.digest
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
        env: EnvView,
        source: str,
        avoid_hash: str,
        allowed: set[str],
        temperature: float,
        rng: random.Random,
    ) -> Result | None:
        own_hash = Program(source).normalized_hash
        p_struct = 0.2 + 0.4 * temperature / 1.5
        an: au.Analysis | None
        an = env.analyze(source)
        # Operators that need what this program lacks would only waste attempts.
        skip = set() if table_groups(env, an) else TABLE_OPS
        if not env.digest:
            skip = skip | {op_table_guided}
        if not switching_fits(env.layout) or find_switch(env, an) is None:
            skip = skip | LAW_OPS  # only a switching controller has laws to flip or scale
        for _ in range(ATTEMPTS):
            if an is None:
                an = env.analyze(source)
            structural = rng.random() < p_struct
            ops = [(w, op) for w, op, s in OPS if s == structural and op not in skip]
            weights = [w for w, _ in ops]
            op = rng.choices([o for _, o in ops], weights=weights)[0]
            if op in TREE_OPS:
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
        env = EnvView(layout_for(ctx))
        try:
            an_a, an_b = env.analyze(a.source), env.analyze(b.source)
        except (SyntaxError, ValueError):
            return None
        hashes = {Program(a.source).normalized_hash, Program(b.source).normalized_hash}
        if len(hashes) < 2:
            return None
        same = au.skeleton(an_a.tree) == au.skeleton(an_b.tree)
        pairs = [(a, b), (b, a)]
        for attempt in range(ATTEMPTS):
            base, other = pairs[rng.randrange(2)] if attempt else pairs[0 if rng.random() < 0.5 else 1]
            allowed = au.undefined_names(env.analyze(base.source).tree)
            try:
                if same:
                    res = mix_constants(env, base, other, temperature, rng)
                    change = "scalar"
                elif "class Policy" in a.source or "class Policy" in b.source:
                    if "class Policy" not in base.source:
                        base, other = other, base
                    # A phase machine takes another's phase; any other class gets statements
                    # transplanted into its methods (the binding check is per scope).
                    res = graft_phase(env, base, other, rng) or transplant(env, base, other, rng)
                    change = "structural"
                else:
                    res = transplant(env, base, other, rng)
                    if res is None and attempt % 2:
                        res = join_under_split(env, base, other, rng)
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


def _switching_starts() -> list[tuple[str, Callable]]:
    """Sixteen starts where a switching controller fits: its four variants (actuator sign times
    the side that holds), six linear maps (still the cheapest to tune) and one of each other family."""
    sw = [("switching", build) for build in SWITCHING_VARIANTS]
    return [
        ("linear", linear_box),
        sw[0],
        ("tree", oblique_tree),
        ("linear", linear_box),
        sw[1],
        ("rules", rules_box),
        ("linear", linear_box),
        sw[2],
        ("pd", pd_box),
        ("linear", linear_box),
        sw[3],
        ("nonlinear", nonlinear_box),
        ("linear", linear_box),
        ("phases", phase_machine),
        ("linear", linear_box),
        ("tree", oblique_tree),
    ]


OPS: list[tuple[float, Callable, bool]] = [
    (4.0, op_perturb, False),
    (1.0, op_change_action, False),
    (4.0, op_table_edit, False),
    (1.0, op_flip_compare, True),
    (1.0, op_swap_branches, True),
    (1.5, op_add_condition, True),
    (1.0, op_remove_condition, True),
    (1.0, op_replace_condition, True),
    (1.5, op_change_component, True),
    (1.0, op_add_term, True),
    (1.0, op_remove_term, True),
    (2.0, op_table_block, True),
    (5.0, op_table_guided, False),
    (1.0, op_add_feature, True),
    (1.0, op_grow_tree, True),
    (1.5, op_flip_law, True),
    (1.5, op_scale_law, False),
]
LAW_OPS = {op_flip_law, op_scale_law}
TABLE_OPS = {op_table_edit, op_table_block, op_table_guided}
TREE_OPS = {
    op_add_feature,
    op_grow_tree,
    op_swap_branches,
    op_add_condition,
    op_remove_condition,
    op_replace_condition,
    op_add_term,
    op_remove_term,
}


# ====================================================================== crossover
