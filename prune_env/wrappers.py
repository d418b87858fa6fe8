"""Wrappers that connect the env to the rest of the RL world.

- :class:`CostPenalty`: reward minus ``coef`` times cost, so any unconstrained algorithm (PPO,
  A2C, TRPO, MaskablePPO, SAC, TD3, ...) runs as a fixed-penalty baseline.
- :class:`Gymnasium2SafetyGymnasium`: Safety-Gymnasium's 6-tuple ``step`` (obs, reward, cost,
  terminated, truncated, info), for CMDP libraries that speak it.
- :class:`SafetyGymnasium2Gymnasium`: the way back, cost moved into ``info["cost"]``.
- :class:`ClipToBudget`: AMC's clipping of ratio actions, so every episode meets the budget.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from prune_env.costs import read_costs


class CostPenalty(gym.Wrapper):
    """Reward minus ``coef`` times cost (with several budgets, ``coef`` may be a list).

    The original reward stays in ``info["unpenalized_reward"]``; the cost stays in ``info``.
    """

    def __init__(self, env: gym.Env, coef: float | Sequence[float] = 1.0, cost_key: str = "cost"):
        super().__init__(env)
        self.coef = np.asarray(coef, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(self.coef)):
            raise ValueError(f"coef must be finite, got {coef!r}")
        self.cost_key = cost_key

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        costs = read_costs(info, self.cost_key)
        if self.coef.size == 1:
            penalty = self.coef[0] * costs[0]  # one coefficient penalizes the primary cost
        elif self.coef.size == costs.size:
            penalty = float(self.coef @ costs)
        else:
            raise ValueError(
                f"CostPenalty has {self.coef.size} coefficients but the env reports {costs.size} costs"
            )
        return obs, float(reward - penalty), terminated, truncated, {**info, "unpenalized_reward": reward}


class Gymnasium2SafetyGymnasium(gym.Wrapper):
    """``step`` returns (obs, reward, cost, terminated, truncated, info), cost from ``info``."""

    def __init__(self, env: gym.Env, cost_key: str = "cost"):
        super().__init__(env)
        self.cost_key = cost_key

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, float(read_costs(info, self.cost_key)[0]), terminated, truncated, info


class SafetyGymnasium2Gymnasium(gym.Wrapper):
    """Turns a 6-tuple ``step`` into Gymnasium's 5-tuple, with the cost in ``info["cost"]``."""

    def step(self, action):
        result = self.env.step(action)
        if len(result) != 6:
            raise ValueError(
                f"expected a 6-tuple (obs, reward, cost, terminated, truncated, info), got {len(result)} items"
            )
        obs, reward, cost, terminated, truncated, info = result
        return obs, reward, terminated, truncated, {**info, "cost": float(cost)}


class ClipToBudget(gym.ActionWrapper):
    """AMC's action clipping (He et al., ECCV 2018) for ``action_mode="ratio"``: each keep-ratio
    is lowered to the largest with which the episode can still meet the first budget when every
    later group keeps one unit (``PruneEnv.max_keep_ratio``), so every episode is feasible by the
    env's analytic estimate (exact for parameters, the MAC ratio otherwise). The clipped ratio is
    reported in ``info["clipped_ratio"]``."""

    def __init__(self, env: gym.Env):
        if getattr(env.unwrapped, "action_mode", None) != "ratio":
            raise ValueError("ClipToBudget needs a PruneEnv with action_mode='ratio'")
        super().__init__(env)

    def action(self, action):
        bound = self.env.unwrapped.max_keep_ratio()
        self._clipped = np.minimum(np.asarray(action, dtype=np.float32), np.float32(bound))
        return self._clipped

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return (
            obs,
            reward,
            terminated,
            truncated,
            {**info, "clipped_ratio": float(self._clipped.reshape(-1)[0])},
        )


class MultiBinaryAsMultiDiscrete(gym.ActionWrapper):
    """Presents ``MultiBinary(n)`` as ``MultiDiscrete([2] * n)``, for algorithms that mishandle
    MultiBinary's int8 actions (sb3-contrib's RecurrentPPO fails in its loss on them)."""

    def __init__(self, env: gym.Env):
        if not isinstance(env.action_space, gym.spaces.MultiBinary):
            raise TypeError(f"expected a MultiBinary action space, got {env.action_space}")
        super().__init__(env)
        self.action_space = gym.spaces.MultiDiscrete([2] * int(np.prod(env.action_space.shape)))

    def action(self, action):
        return np.asarray(action, dtype=np.int8).reshape(self.env.action_space.shape)
