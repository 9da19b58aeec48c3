def policy(obs):
    """highway-fast-v0 policy: the offline search's best program of 2026-12-02 (docs/driving.md).

    Actions: 0 LANE_LEFT, 1 IDLE, 2 LANE_RIGHT, 3 FASTER, 4 SLOWER.
    """
    front_gap = obs[0]  # m, typical 0..100
    front_closing = obs[1]  # m/s, typical -10..10
    left_front_gap = obs[2]  # m, typical 0..100
    left_rear_gap = obs[3]  # m, typical 0..100
    right_front_gap = obs[4]  # m, typical 0..100
    right_rear_gap = obs[5]  # m, typical 0..100
    speed = obs[6]  # m/s, typical 15..30
    heading = obs[7]  # rad, typical -0.3..0.3
    lane_offset = obs[8]  # m, typical -2..2
    left_lane = obs[9]  # flag, typical 0..1
    right_lane = obs[10]  # flag, typical 0..1
    u = (
        -0.2629 * (57.79 - left_front_gap) - 0.00504 * left_front_gap
        - 0.2825 * (-0.2664 - front_gap) - 0.234 * left_lane
        + 0.0123 * (43.5 - right_rear_gap) - 0.1555 * lane_offset
    )
    if u > 0.273:
        return 1
    if u < -0.273:
        return 4
    return 3
