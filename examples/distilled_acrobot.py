"""Oblique decision tree for Acrobot-v1, distilled by `scriptrl distill` from
PPO program #16 of runs/acro-ppo
(DAgger with VIPER weighting, then CMA-ES on its numbers; 3 leaves, depth 2).
"""


def policy(obs):
    _, sin_theta1, cos_theta2, sin_theta2, theta1_dot, theta2_dot = [float(v) for v in obs[:6]]
    if -sin_theta2 + 0.5783 * theta2_dot - 0.5174 * theta1_dot <= -0.2882:
        return 0  # torque_negative
    if -cos_theta2 + 0.7319 * theta1_dot - 0.3327 * sin_theta1 <= 0.6971:
        return 2  # torque_positive
    return 0  # torque_negative
