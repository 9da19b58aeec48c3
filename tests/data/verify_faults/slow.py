"""Planted fault: far too slow for some inputs (a busy loop when the pole spins fast)."""


def policy(obs):
    position, velocity, angle, angular_velocity = obs
    if angular_velocity > 3.0:
        total = 0
        for i in range(1_500_000):  # ~90 ms here; 400 k ran under the 10 ms bound on a fast machine
            total += i
    push = 10.0 * angle + 2.0 * angular_velocity + 0.1 * position + 0.3 * velocity
    return 1 if push > 0 else 0
