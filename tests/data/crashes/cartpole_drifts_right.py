"""CartPole-v1 with a planted bug: right of x = 0.3 it pushes further right (4 of seeds 0-9 fall)."""


def policy(obs):
    position, velocity, angle, angular_velocity = obs
    if position > 0.3:
        return 1
    score = 0.1 * position + 0.3 * velocity + 10.0 * angle + 2.0 * angular_velocity
    return 1 if score > 0.0 else 0
