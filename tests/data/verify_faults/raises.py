"""Planted fault: an exception for some inputs.

math.log of a negative number raises ValueError when the cart is far left of the
track (position < -3), which never happens while the pole is balanced.
"""

import math


def policy(obs):
    position, velocity, angle, angular_velocity = obs
    margin = math.log(position + 3.0)
    push = 10.0 * angle + 2.0 * angular_velocity + 0.1 * position + 0.3 * velocity + 0.0 * margin
    return 1 if push > 0 else 0
