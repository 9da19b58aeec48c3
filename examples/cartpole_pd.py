"""A hand-written PD controller for CartPole-v1: push toward where the pole is falling.

obs = [cart position, cart velocity, pole angle, pole angular velocity]
"""


def policy(obs):
    angle, angular_velocity = obs[2], obs[3]
    position, velocity = obs[0], obs[1]
    # Balance the pole first (angle and its rate), then gently recentre the cart.
    push = 10.0 * angle + 2.0 * angular_velocity + 0.1 * position + 0.3 * velocity
    return 1 if push > 0 else 0
