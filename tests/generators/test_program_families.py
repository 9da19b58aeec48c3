"""Program families of the offline generator, decode tables, and digest-guided table edits.

Generated programs are our own and run in-process here on real observations (conftest's
``acts_validly``); the digest-guided edit is checked on a real sandboxed evaluation.
"""

from __future__ import annotations

import copy
import random

import gymnasium
import pytest

from scriptrl.envs.description import curated, curated_files, parse_description
from scriptrl.errors import UserError
from scriptrl.evaluate import evaluate
from scriptrl.generators import GenContext, OfflineMutator, ParentInfo
from scriptrl.generators import astutil as au
from scriptrl.generators.layout import layout_for
from scriptrl.generators.offline import EnvView
from scriptrl.generators.offline.controllers import (
    nonlinear_box,
    nonlinear_discrete,
    oblique_tree,
    pd_box,
    pd_discrete,
)
from scriptrl.generators.offline.decoded import place_rules, seeded_table
from scriptrl.generators.offline.guided import blame, op_table_guided
from scriptrl.generators.offline.phase import phase_machine
from scriptrl.generators.offline.switching import SWITCHING_VARIANTS
from scriptrl.generators.offline.templates import table
from scriptrl.program import check_source
from scriptrl.seeds import SeedSplits

GEN = OfflineMutator()
BOX_ENVS = ["Pendulum-v1", "MountainCarContinuous-v0", "LunarLanderContinuous-v3", "BipedalWalker-v3"]
DISCRETE_ACTION_ENVS = ["CartPole-v1", "Acrobot-v1", "LunarLander-v3"]
FAMILIES = {
    "box": [nonlinear_box, pd_box, oblique_tree, phase_machine, SWITCHING_VARIANTS[0], SWITCHING_VARIANTS[3]],
    "discrete": [nonlinear_discrete, pd_discrete, oblique_tree, phase_machine],
}


def family_program(ctx: GenContext, family, seed: int) -> str:
    env = EnvView(layout_for(ctx))
    body, _ = family(env, random.Random(seed), 1.0)
    return GEN._finish(env, body)


def valid(source: str) -> bool:
    return check_source(source) == [] and au.problem(source) is None


@pytest.mark.parametrize("env_id", BOX_ENVS + DISCRETE_ACTION_ENVS)
def test_each_family_writes_valid_programs_that_act(env_id, acts_validly, context):
    kind = "box" if env_id in BOX_ENVS else "discrete"
    for family in FAMILIES[kind]:
        for seed in range(3):
            src = family_program(context(env_id), family, seed)
            assert valid(src), (family.__name__, au.problem(src), src)
            assert len(src.splitlines()) <= 60, src
            acts_validly(src, env_id)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "BipedalWalker-v3", "CartPole-v1", "LunarLander-v3"])
def test_mutations_and_crossovers_of_each_family_stay_valid(env_id, context, acts_validly):
    kind = "box" if env_id in BOX_ENVS else "discrete"
    rng = random.Random(11)
    ctx = context(env_id)
    for family in FAMILIES[kind]:
        a = ParentInfo(1, family_program(context(env_id), family, 1), 0.0)
        b = ParentInfo(2, family_program(context(env_id), family, 2), 0.0)
        children = [GEN.mutate(ctx, a, rng.uniform(0.0, 1.5), rng) for _ in range(12)]
        children += [GEN.crossover(ctx, a, b, 1.0, rng) for _ in range(4)]
        made = [c for c in children if c is not None]
        assert len(made) >= 10, family.__name__
        for child in made:
            assert valid(child.source), (child.note, au.problem(child.source))
            assert child.source not in (a.source, b.source)
            acts_validly(child.source, env_id)


def test_family_operators_add_features_and_grow_trees(context):
    ctx = context("LunarLander-v3")
    rng = random.Random(3)
    tree = ParentInfo(1, family_program(context("LunarLander-v3"), oblique_tree, 0), 0.0)
    notes = [c.note for c in (GEN.mutate(ctx, tree, 1.5, rng) for _ in range(80)) if c is not None]
    assert any("split the leaf" in n for n in notes)
    box = context("Pendulum-v1")
    pd = ParentInfo(1, family_program(context("Pendulum-v1"), pd_box, 0), 0.0)
    notes = [c.note for c in (GEN.mutate(box, pd, 1.5, rng) for _ in range(80)) if c is not None]
    assert any("added the feature" in n for n in notes)


def test_pd_controllers_track_the_pairs_the_description_names(context):
    src = family_program(context("MountainCarContinuous-v0"), pd_box, 0)
    assert "- position)" in src and "* velocity" in src


# --------------------------------------------------------------------------- decoded parts


def test_decode_table_matches_the_environment_decoder():
    dec = curated()["Taxi-v4"].decode
    assert [p.name for p in dec.parts] == ["taxi_row", "taxi_col", "passenger", "destination"]
    taxi = gymnasium.make("Taxi-v4").unwrapped
    assert all(dec.split(s) == tuple(taxi.decode(s)) for s in range(500))
    lake = curated()["FrozenLake8x8-v1"].decode
    assert lake.split(19) == (2, 3) and lake.grid[2][3] == "H"


def test_generated_programs_read_decoded_parts_by_name(acts_validly, context):
    for env_id, reads in [
        ("Taxi-v4", ["taxi_row = obs // 100", "taxi_col = obs // 20 % 5", "destination = obs % 4"]),
        ("FrozenLake8x8-v1", ["row = obs // 8", "col = obs % 8"]),
    ]:
        src = family_program(context(env_id), place_rules, 0)
        assert valid(src) and all(r in src for r in reads), src
        assert "target_" in src and "obs[" not in src
        acts_validly(src, env_id)
        table = family_program(context(env_id), seeded_table, 0)
        assert valid(table) and "TABLE[obs]" in table
        acts_validly(table, env_id)


def test_place_rules_step_towards_the_target(context):
    """Row below the target row: the rule returns the action the description says moves down."""
    src = family_program(context("FrozenLake8x8-v1"), place_rules, 0)
    ns: dict = {}
    exec(src, ns)
    assert ns["policy"](0) in (1, 2)  # from the top-left corner: down or right towards the goal
    assert ns["policy"](7) == 1  # top-right corner (row 0, col 7): only down remains
    assert ns["policy"](56) == 2  # bottom-left corner: only right remains


def test_seeded_tables_reach_the_goal_more_than_random_tables(context):
    """On the 8x8 lake random tables almost never reach the goal; tables seeded by place rules do."""
    env = EnvView(layout_for(context("FrozenLake8x8-v1")))
    seeds = SeedSplits().train(0, 100)

    def successes(family) -> float:
        srcs = [GEN._finish(env, family(env, random.Random(s), 0.0)[0]) for s in range(3)]
        return sum(evaluate(s, "FrozenLake8x8-v1", seeds).mean for s in srcs)

    assert successes(seeded_table) > successes(table) + 0.5


def test_taxi_walls_match_the_gymnasium_map():
    desc = gymnasium.make("Taxi-v4").unwrapped.desc  # rows of bytes: "|R: | : :G|"
    walls = {frozenset(w) for w in curated()["Taxi-v4"].decode.walls}
    for r in range(5):
        for c in range(4):
            assert (desc[r + 1][2 * c + 2] == b"|") == (frozenset({(r, c), (r, c + 1)}) in walls)


def test_seeded_taxi_tables_deliver_when_their_arrival_actions_are_right(context):
    """Planned paths go around the described walls; only pickup/dropoff are left to the search."""
    env = EnvView(layout_for(context("Taxi-v4")))
    seeds = SeedSplits().seeds("dev")
    means = [
        evaluate(GEN._finish(env, seeded_table(env, random.Random(s), 0.0)[0]), "Taxi-v4", seeds).mean
        for s in range(4)
    ]
    assert max(means) > 0 > min(means)  # right arrival actions deliver every time, wrong ones never


def _with_decode(decode: dict) -> dict:
    data = copy.deepcopy(curated_files()["Taxi-v4.toml"])
    data["decode"] = decode
    return data


@pytest.mark.parametrize(
    "decode, words",
    [
        ({"parts": [{"name": "row", "size": 5}]}, "multiply to 5, not the 500"),
        ({"parts": "row"}, "needs parts"),
        ({"parts": [{"name": "row", "size": 0}]}, "positive integer size"),
        ({"parts": [{"name": "a b", "size": 500}]}, "identifier name"),
        ({"parts": [{"name": "row", "size": 500, "places": "pads"}]}, "unknown places"),
        ({"parts": [{"name": "row", "size": 500}], "moves": {"fly": [1]}}, "moves must map"),
        ({"parts": [{"name": "row", "size": 500}], "colour": 1}, "takes parts"),
    ],
)
def test_malformed_decode_table_is_a_one_line_user_error(decode, words):
    with pytest.raises(UserError, match=words) as err:
        parse_description(_with_decode(decode), "Taxi-v4.toml")
    assert "\n" not in str(err.value) and "[decode]" in str(err.value)


def test_description_prompt_and_dict_show_the_decoded_parts():
    desc = curated()["Taxi-v4"]
    assert "taxi_row = obs // 100" in desc.to_prompt()
    assert desc.to_dict()["decode"]["places"]["pads"][3] == {"name": "B", "at": [4, 3]}


# --------------------------------------------------------------------------- digest-guided edits


def test_blame_points_at_the_state_before_a_failure_and_spares_successful_paths():
    episodes = [
        {
            "return": 1.0,
            "end": "terminated",
            "tail": [{"obs": 14, "action": 2}],
            "action_summary": {"visits": {"0": 1, "4": 1, "14": 1}},
        },
        {
            "return": 0.0,
            "end": "terminated",
            "tail": [{"obs": 4, "action": 1}, {"obs": 9, "action": 1}],
            "action_summary": {"visits": {"0": 1, "4": 1, "9": 1}},
        },
    ]
    b = blame(episodes)
    assert set(b.weights) == {9} and {0, 4, 14} <= b.keep


def test_digest_guided_edit_changes_the_action_before_a_failure_on_real_episodes(context):
    """A real evaluation's digest: the child changes the table where failed episodes acted last."""
    ctx = context("FrozenLake8x8-v1")
    table = [2] * 64  # always right: runs along the top row, slips, falls or times out
    source = f"TABLE = {table!r}\n\n\ndef policy(obs):\n    return TABLE[obs]\n"
    result = evaluate(source, "FrozenLake8x8-v1", SeedSplits().seeds("dev"))
    digest = {
        "digest": [
            {"return": ep.ret, "end": ep.end, "tail": ep.tail, "action_summary": ep.action_summary}
            for ep in result.episodes
        ]
    }
    assert all(ep.action_summary["visits"] for ep in result.episodes)
    before_end = {ep.tail[-1]["obs"] for ep in result.episodes if ep.end == "terminated" and ep.ret == 0}
    assert before_end, "some dev episodes must fall into a hole"
    env = EnvView(layout_for(ctx))
    env.digest = digest
    changed_before_end = 0
    for seed in range(10):
        res = op_table_guided(env, env.analyze(source), 0.5, random.Random(seed))
        assert res is not None
        ns: dict = {}
        exec(res[0], ns)
        changed = {s for s in range(64) if ns["TABLE"][s] != 2}
        assert changed and changed <= set(blame(digest["digest"]).weights)
        changed_before_end += bool(changed & before_end)
    assert changed_before_end >= 5


def test_mutate_uses_the_parent_digest_for_tables(context):
    ctx = context("FrozenLake8x8-v1")
    source = f"TABLE = {[1] * 64!r}\n\n\ndef policy(obs):\n    return TABLE[obs]\n"
    result = evaluate(source, "FrozenLake8x8-v1", list(range(6)))
    digest = {
        "digest": [
            {"return": e.ret, "end": e.end, "tail": e.tail, "action_summary": e.action_summary}
            for e in result.episodes
        ]
    }
    rng = random.Random(0)
    with_digest = ParentInfo(1, source, 0.0, digest)
    notes = [c.note for c in (GEN.mutate(ctx, with_digest, 0.3, rng) for _ in range(30)) if c]
    assert any("failed episodes went wrong" in n for n in notes)
    without = ParentInfo(1, source, 0.0)
    notes = [c.note for c in (GEN.mutate(ctx, without, 0.3, rng) for _ in range(30)) if c]
    assert not any("failed episodes went wrong" in n for n in notes)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "LunarLander-v3"])
def test_crossover_between_families_grafts_phases_and_joins_under_a_split(env_id, context, acts_validly):
    kind = "box" if env_id in BOX_ENVS else "discrete"
    ctx, rng = context(env_id), random.Random(4)
    machine = ParentInfo(1, family_program(context(env_id), phase_machine, 0), 0.0)
    pd = ParentInfo(2, family_program(context(env_id), FAMILIES[kind][1], 0), 0.0)
    nonlinear = ParentInfo(3, family_program(context(env_id), FAMILIES[kind][0], 0), 0.0)
    grafts = [GEN.crossover(ctx, machine, pd, 1.0, rng) for _ in range(6)]
    joins = [GEN.crossover(ctx, pd, nonlinear, 1.0, rng) for _ in range(6)]
    assert any(c is not None and "now acts as #2" in c.note for c in grafts)
    if kind == "discrete":  # Box programs share their action variable: their terms mix instead
        assert any(c is not None and "else as #" in c.note for c in joins)
    for child in [c for c in grafts + joins if c is not None]:
        assert valid(child.source), child.note
        acts_validly(child.source, env_id)
