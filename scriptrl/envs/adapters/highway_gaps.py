"""Eleven named driving readings from highway-env's own road state, instead of its 2-D arrays.

Why: highway-env's Kinematics and Lidar observations are rows of nearby vehicles (or angular
bins) that mix lanes, so a rule like "the lane to my left is free" needs array bookkeeping no
short program should carry. This adapter reads the ego vehicle and the road network directly
(trusted side, next to the simulator) and reports, per lane, the gap to the nearest vehicle
ahead and behind, the closing speed ahead, and the ego vehicle's own speed, heading and lane
offset. Lanes are the road network's lanes, so it works for any highway-env scene built on
straight or curved lanes (highway, merge, roundabout entries), not one configuration.

Readings, in order (names as in the descriptions' ``[[observation]]`` entries):
front_gap, front_closing, left_front_gap, left_rear_gap, right_front_gap, right_rear_gap,
speed, heading, lane_offset, left_lane, right_lane.
A gap is bumper to bumper along the lane, capped at ``RANGE`` (nothing seen within sensor
range); a lane that does not exist has gap 0 (no room), so "gap > x" rules are safe there.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

RANGE = 100.0  # m: sensor range; a gap of RANGE means no vehicle within it
NAMES = (
    "front_gap",
    "front_closing",
    "left_front_gap",
    "left_rear_gap",
    "right_front_gap",
    "right_rear_gap",
    "speed",
    "heading",
    "lane_offset",
    "left_lane",
    "right_lane",
)


class HighwayGaps(gymnasium.ObservationWrapper):
    """Replaces the observation with ``len(NAMES)`` float32 readings computed from the road state."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        low = np.array([0, -60, 0, 0, 0, 0, -40, -np.pi, -10, 0, 0], dtype=np.float32)
        high = np.array([RANGE, 60, RANGE, RANGE, RANGE, RANGE, 40, np.pi, 10, 1, 1], dtype=np.float32)
        self.observation_space = gymnasium.spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        return readings(self.env.unwrapped)


def readings(env: Any) -> np.ndarray:
    """The readings of ``env``'s ego vehicle (a highway-env ``AbstractEnv``) as a float32 array."""
    ego, road = env.vehicle, env.road
    lane_index = ego.lane_index
    network = road.network
    lane = network.get_lane(lane_index)
    s, lateral = lane.local_coordinates(ego.position)
    _from, _to, lane_id = lane_index
    n_lanes = len(network.graph[_from][_to])
    front_gap, front_closing, _ = _gaps(road, ego, lane_index)
    sides = []
    for side_id in (lane_id - 1, lane_id + 1):  # lane ids grow to the right
        if 0 <= side_id < n_lanes:
            ahead, _, behind = _gaps(road, ego, (_from, _to, side_id))
            sides += [ahead, behind]
        else:
            sides += [0.0, 0.0]
    heading = float((ego.heading - lane.heading_at(s) + np.pi) % (2 * np.pi) - np.pi)
    out = [
        front_gap,
        front_closing,
        *sides,
        float(ego.speed),
        heading,
        float(lateral),
        float(lane_id > 0),
        float(lane_id < n_lanes - 1),
    ]
    return np.array(out, dtype=np.float32)


def _gaps(road: Any, ego: Any, lane_index: Any) -> tuple[float, float, float]:
    """Gap ahead, closing speed ahead (positive: the gap is shrinking), gap behind, on one lane."""
    lane = road.network.get_lane(lane_index)
    s_ego = lane.local_coordinates(ego.position)[0]
    front, rear = road.neighbour_vehicles(ego, lane_index)
    ahead, closing, behind = RANGE, 0.0, RANGE
    if front is not None:
        s = lane.local_coordinates(front.position)[0]
        gap = s - s_ego - (front.LENGTH + ego.LENGTH) / 2
        if gap < RANGE:
            ahead = max(gap, 0.0)
            closing = float(ego.speed * np.cos(ego.heading - lane.heading_at(s_ego)) - _along(front, lane, s))
    if rear is not None:
        s = lane.local_coordinates(rear.position)[0]
        behind = float(min(max(s_ego - s - (rear.LENGTH + ego.LENGTH) / 2, 0.0), RANGE))
    return float(ahead), closing, behind


def _along(vehicle: Any, lane: Any, s: float) -> float:
    return float(vehicle.speed * np.cos(vehicle.heading - lane.heading_at(s)))
