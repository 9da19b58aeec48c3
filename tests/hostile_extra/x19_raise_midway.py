"""ATTACK: behave for a few steps, then raise, hoping a late failure is dropped or the
episode counted as complete. The reason must name the exception and the line."""


class Policy:
    def reset(self, seed):
        self.t = 0

    def act(self, obs):
        self.t += 1
        if self.t > 5:
            raise ValueError(f"deliberate failure at step {self.t}")
        return 0
