"""A correct CartPole-v1 policy: a PD controller that must pass every verify check."""


def policy(obs):
    position, velocity, angle, angular_velocity = obs
    push = 10.0 * angle + 2.0 * angular_velocity + 0.1 * position + 0.3 * velocity
    return 1 if push > 0 else 0
