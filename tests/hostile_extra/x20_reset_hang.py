"""ATTACK: a stateful Policy whose reset() never returns (busy loop), so the hang happens
outside act(), where a per-action deadline might not look."""


class Policy:
    def reset(self, seed):
        while True:
            pass

    def act(self, obs):
        return 0
