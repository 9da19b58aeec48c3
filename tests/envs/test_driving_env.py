"""The driving case study's environment: highway-env behind the HighwayGaps adapter (issue 17).

The adapter is the trusted evaluator side: it reads the road, the program sees only its
readings. These tests build real highway-fast-v0 episodes, place real vehicles on the road and
check the readings say what the description says they mean.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("highway_env")

from highway_env.vehicle.kinematics import Vehicle  # noqa: E402

from scriptrl.cli import main as cli_main  # noqa: E402
from scriptrl.envs import options as env_options  # noqa: E402
from scriptrl.envs import resolve_env  # noqa: E402
from scriptrl.envs.adapters.highway_gaps import NAMES, RANGE, readings  # noqa: E402
from scriptrl.envs.description import curated  # noqa: E402
from scriptrl.errors import UserError  # noqa: E402

IDS = ("highway-fast-v0", "highway-v0")
ACTIONS = ["LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER"]


@pytest.fixture(scope="module")
def fast():
    return resolve_env("highway-fast-v0")


def _reading(obs: np.ndarray, name: str) -> float:
    return float(obs[NAMES.index(name)])


@pytest.mark.parametrize("env_id", IDS)
def test_description_names_the_adapter_readings_and_highway_actions(env_id: str) -> None:
    desc = curated()[env_id]
    assert tuple(c.name for c in desc.observation) == NAMES
    assert len(NAMES) <= 12
    assert [a.name for a in desc.actions] == ACTIONS
    assert desc.imports == ("highway_env",)
    wrappers, _ = env_options.split_wrappers(dict(desc.make))
    assert wrappers == ("scriptrl.envs.adapters.highway_gaps:HighwayGaps",)
    text = desc.to_prompt()
    assert all(n in text for n in (*NAMES, *ACTIONS)) and "collision" in text.lower()


@pytest.mark.parametrize("env_id", IDS)
def test_resolved_env_applies_the_adapter_and_its_space_holds_the_described_ranges(env_id: str) -> None:
    renv = resolve_env(env_id)
    env = renv.make()
    try:
        space = env.observation_space
        assert space.shape == (len(NAMES),)
        for comp, lo, hi in zip(renv.description.observation, space.low, space.high, strict=True):
            assert lo <= comp.low <= comp.high <= hi, comp.name
        obs, _ = env.reset(seed=0)
        assert space.contains(obs)
        assert env.unwrapped.config["lanes_count"] == (3 if env_id == "highway-fast-v0" else 4)
    finally:
        env.close()


def test_readings_over_a_real_episode_are_in_range_and_match_the_road(fast) -> None:
    env = fast.make()
    try:
        obs, _ = env.reset(seed=2)
        n_lanes = env.unwrapped.config["lanes_count"]
        seen_lanes = set()
        for t in range(12):
            ego = env.unwrapped.vehicle
            lane_id = ego.lane_index[2]
            seen_lanes.add(lane_id)
            assert env.observation_space.contains(obs)
            assert _reading(obs, "speed") == pytest.approx(ego.speed, abs=1e-4)
            assert _reading(obs, "left_lane") == float(lane_id > 0)
            assert _reading(obs, "right_lane") == float(lane_id < n_lanes - 1)
            if lane_id == 0:  # no lane to the left: no room there
                assert _reading(obs, "left_front_gap") == _reading(obs, "left_rear_gap") == 0.0
            if lane_id == n_lanes - 1:
                assert _reading(obs, "right_front_gap") == _reading(obs, "right_rear_gap") == 0.0
            action = [0, 1, 4, 2, 1, 4][t % 6]  # weave across lanes, so side readings change
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        assert len(seen_lanes) > 1
    finally:
        env.close()


def _alone_on_lane(env, lane_id: int) -> tuple:
    """Reset, then clear the road but the ego vehicle and move it to ``lane_id``'s centre at s=100."""
    env.reset(seed=0)
    u = env.unwrapped
    ego = u.vehicle
    u.road.vehicles[:] = [ego]
    index = (*ego.lane_index[:2], lane_id)
    lane = u.road.network.get_lane(index)
    ego.position = lane.position(100.0, 0.0)
    ego.heading = lane.heading_at(100.0)
    ego.lane_index, ego.lane = index, lane
    return u, lane


def _place(u, lane_index: tuple, s: float, speed: float) -> None:
    lane = u.road.network.get_lane(lane_index)
    u.road.vehicles.append(Vehicle(u.road, lane.position(s, 0.0), lane.heading_at(s), speed))


def test_a_vehicle_placed_ahead_or_beside_shows_as_its_gap(fast) -> None:
    env = fast.make()
    try:
        u, lane = _alone_on_lane(env, 1)  # the middle of three lanes
        empty = dict(zip(NAMES, readings(u), strict=True))
        assert empty["front_gap"] == empty["left_front_gap"] == empty["right_rear_gap"] == RANGE
        assert empty["front_closing"] == 0.0 and abs(empty["lane_offset"]) < 1e-6
        ego_speed = float(u.vehicle.speed)
        _place(u, u.vehicle.lane_index, 100.0 + 20.0, ego_speed - 5.0)  # 20 m centre to centre
        _place(u, (*u.vehicle.lane_index[:2], 0), 100.0 - 30.0, ego_speed)  # behind, on the left
        got = dict(zip(NAMES, readings(u), strict=True))
        assert got["front_gap"] == pytest.approx(20.0 - Vehicle.LENGTH, abs=1e-3)
        assert got["front_closing"] == pytest.approx(5.0, abs=1e-3)
        assert got["left_rear_gap"] == pytest.approx(30.0 - Vehicle.LENGTH, abs=1e-3)
        assert got["left_front_gap"] == RANGE and got["right_front_gap"] == RANGE
    finally:
        env.close()


def test_bad_wrapper_option_is_a_one_line_user_error() -> None:
    with pytest.raises(UserError, match="module:Class"):
        env_options.split_wrappers({"wrapper": "no_colon_here"})
    with pytest.raises(UserError, match="module:Class"):
        env_options.split_wrappers({"wrapper": [3]})
    names, rest = env_options.split_wrappers({"wrapper": "a.b:C", "config": {"x": 1}})
    assert names == ("a.b:C",) and rest == {"config": {"x": 1}}


def test_options_keep_the_adapter_and_the_curated_description() -> None:
    renv = resolve_env("highway-fast-v0", options={"config": {"lanes_count": 4}})
    assert not renv.description.generated and renv.description.id == "highway-fast-v0"
    env = renv.make()
    try:
        env.reset(seed=0)
        assert env.unwrapped.config["lanes_count"] == 4 and env.observation_space.shape == (len(NAMES),)
    finally:
        env.close()


RULE = """
def policy(obs):
    front_gap, front_closing, left_front_gap, left_rear_gap = obs[0], obs[1], obs[2], obs[3]
    if front_gap < 20 + 2 * front_closing:
        return 0 if left_front_gap > front_gap + 10 and left_rear_gap > 10 else 4
    return 3
"""


@pytest.mark.slow
def test_cli_eval_runs_a_hand_rule_through_the_sandbox(tmp_path, capsys) -> None:
    policy = tmp_path / "rule.py"
    policy.write_text(RULE)
    code = cli_main(["eval", str(policy), "--env", "highway-fast-v0", "--episodes", "2", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert out["episodes"] == 2 and not out["failures"]
    assert 0 < out["mean"] <= 30.0  # at most 1 per step over 30 steps
    assert "HighwayGaps" in out["env_label"]
