"""Oblique decision tree for LunarLander-v3, distilled by `scriptrl distill` from
PPO program #41 of runs/ll-ppo
(DAgger with VIPER weighting, then CMA-ES on its numbers; 17 leaves, depth 5).
"""


def policy(obs):
    x, y, vx, vy, angle, angular_velocity, _, left_leg_contact = [float(v) for v in obs[:8]]
    if -angle + 0.8478 * x + 0.2673 * vx <= 0.03226:
        if -angle + 0.8048 * x + 0.5704 * left_leg_contact <= 0.1645:
            if -vy - 0.745 * angle + 0.06725 * left_leg_contact <= 0.2204:
                if angle - 0.4408 * x + 0.1078 * y <= 0.001497:
                    if 1.262 * vy + vx <= 0.004199:
                        return 3  # fire_right_engine
                    return 0  # noop
                return 3  # fire_right_engine
            if vy + 0.4551 * y + 0.3154 * angle <= -0.1717:
                return 2  # fire_main_engine
            if angular_velocity - 0.3998 * vx + 0.3632 * angle <= -0.007726:
                return 1  # fire_left_engine
            return 3  # fire_right_engine
        if vy <= -0.03216:
            return 3  # fire_right_engine
        return 0  # noop
    if vy <= -0.2533:
        if x - 0.9076 * angle + 0.3528 * y <= 0.9188:
            if vy <= -0.3638:
                return 2  # fire_main_engine
            if -vy - 0.4002 * y - 0.2439 * x <= 0.1008:
                return 1  # fire_left_engine
            return 2  # fire_main_engine
        return 1  # fire_left_engine
    if 1.071 * angle + vy + 0.08382 * y <= -0.1126:
        if vy - 0.949 * angular_velocity + 0.2345 * vx <= -0.312:
            return 2  # fire_main_engine
        return 1  # fire_left_engine
    if -angle + 0.3955 * x + 0.1171 * vx <= 0.1535:
        if vy <= -0.1595:
            return 3  # fire_right_engine
        return 0  # noop
    return 1  # fire_left_engine
