"""Planted fault: a call that takes about 1.5 s when the cart is far from the centre.

A PD controller that balances the pole well (the cart stays near the centre, so its
episodes never reach the slow branch), with a busy loop when |position| > 2.0.
"""


def policy(obs):
    position, velocity, angle, angular_velocity = obs
    if abs(position) > 2.0:
        total = 0
        for i in range(15_000_000):
            total += i
    push = 10.0 * angle + 2.0 * angular_velocity + 0.1 * position + 0.3 * velocity
    return 1 if push > 0 else 0
