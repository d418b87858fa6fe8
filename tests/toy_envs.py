"""Small constrained environments where the reward-greedy policy breaks the cost limit."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class GreedyBreaksLimitEnv(gym.Env):
    """Each step, choose which of ``n`` units to use: reward = cost = fraction used. Using
    everything (the greedy policy) costs ``horizon`` per episode, far above the limit
    ``budget_limit = 0.3 * horizon``.

    ``action="multibinary"`` (MultiBinary(n)) or ``"box"`` (Box(0, 1, (1,)): the fraction).
    ``fixed_cost`` makes every step cost the same, whatever the action.
    ``two_costs=True`` reports a second cost, 0.5 * first, in ``info["costs"]``.
    """

    def __init__(
        self,
        n: int = 4,
        horizon: int = 5,
        action: str = "multibinary",
        two_costs: bool = False,
        report_cost: bool = True,
        fixed_cost: float | None = None,
    ):
        self.n, self.horizon, self.two_costs, self.report_cost = n, horizon, two_costs, report_cost
        self.fixed_cost = fixed_cost
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = (
            gym.spaces.MultiBinary(n)
            if action == "multibinary"
            else gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        )
        self.budget_limit = 0.3 * horizon
        self.t = 0

    def _obs(self):
        return np.array([self.t / self.horizon, 1.0], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        used = (
            float(np.mean(action))
            if isinstance(self.action_space, gym.spaces.MultiBinary)
            else float(np.clip(action, 0, 1)[0])
        )
        self.t += 1
        cost = used if self.fixed_cost is None else self.fixed_cost
        info = {}
        if self.report_cost:
            info["cost"] = cost
            if self.two_costs:
                info["costs"] = [cost, 0.5 * cost]
        return self._obs(), used, self.t >= self.horizon, False, info


class TradeoffEnv(gym.Env):
    """Each step, choose which of 4 units to use. Units 0 and 1 pay well and cost little, units 2
    and 3 pay little and cost much (reward ``[1, 1, .2, .2] / 4``, cost ``[.1, .1, 1, 1] / 4`` per
    unit used). Over 5 steps: everything (unconstrained optimum) earns 3.0 at cost 2.75; a random
    policy 1.5 at cost 1.375; under ``budget_limit = 0.5`` the best is units 0 and 1 (2.5 at 0.25)
    plus a little of the rest. ``info["raw_reward"]`` repeats the reward (wrappers may change it).
    """

    REWARD = np.array([1.0, 1.0, 0.2, 0.2]) / 4
    COST = np.array([0.1, 0.1, 1.0, 1.0]) / 4

    def __init__(self, horizon: int = 5, action: str = "multibinary"):
        self.horizon = horizon
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
        # "box": how much of each unit is used, in [0, 1] (for agents with continuous actions)
        self.action_space = (
            gym.spaces.MultiBinary(4) if action == "multibinary" else gym.spaces.Box(0, 1, (4,))
        )
        self.budget_limit = 0.5
        self.t = 0

    def _obs(self):
        return np.array([self.t / self.horizon, 1.0], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        used = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), 0.0, 1.0)
        self.t += 1
        reward = float(self.REWARD @ used)
        info = {"cost": float(self.COST @ used), "raw_reward": reward}
        return self._obs(), reward, self.t >= self.horizon, False, info
