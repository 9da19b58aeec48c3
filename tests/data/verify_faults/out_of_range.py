"""Planted fault: an out-of-range action in one corner of the observation space.

Far right of the track with the pole leaning far right (both beyond where CartPole
episodes end, but inside the observation space), the policy returns 2, which is not
an action of CartPole-v1 (0 or 1). Episodes never get there, so evaluation misses it.
"""


def policy(obs):
    position, velocity, angle, angular_velocity = obs
    if position > 4.0 and angle > 0.35:
        return 2
    push = 10.0 * angle + 2.0 * angular_velocity + 0.1 * position + 0.3 * velocity
    return 1 if push > 0 else 0
