"""A rollout buffer that also stores costs, cost values, cost returns and cost advantages.

Extends SB3's ``RolloutBuffer`` the way sb3-contrib's ``MaskableRolloutBuffer`` does: extra
arrays allocated in ``reset``, stored in ``add(..., cost=, cost_value=)``, and samples that are
a superset of the parent's. Costs have their own discount and GAE lambda.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer


class CostRolloutBufferSamples(NamedTuple):
    observations: th.Tensor
    actions: th.Tensor
    old_values: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    returns: th.Tensor
    old_cost_values: th.Tensor  # (batch, n_costs)
    cost_advantages: th.Tensor  # (batch, n_costs)
    cost_returns: th.Tensor  # (batch, n_costs)


class CostRolloutBuffer(RolloutBuffer):
    """RolloutBuffer with ``n_costs`` cost channels.

    Args:
        n_costs: number of constraints.
        cost_gamma: discount of costs.
        cost_gae_lambda: GAE lambda of costs.
    """

    costs: np.ndarray
    cost_values: np.ndarray
    cost_returns: np.ndarray
    cost_advantages: np.ndarray

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        gae_lambda: float = 1,
        gamma: float = 0.99,
        n_envs: int = 1,
        n_costs: int = 1,
        cost_gamma: float = 0.99,
        cost_gae_lambda: float = 0.95,
    ):
        self.n_costs, self.cost_gamma, self.cost_gae_lambda = (
            int(n_costs),
            float(cost_gamma),
            float(cost_gae_lambda),
        )
        super().__init__(buffer_size, observation_space, action_space, device, gae_lambda, gamma, n_envs)

    def reset(self) -> None:
        shape = (self.buffer_size, self.n_envs, self.n_costs)
        self.costs = np.zeros(shape, dtype=np.float32)
        self.cost_values = np.zeros(shape, dtype=np.float32)
        self.cost_returns = np.zeros(shape, dtype=np.float32)
        self.cost_advantages = np.zeros(shape, dtype=np.float32)
        super().reset()

    def add(self, *args, cost: np.ndarray, cost_value: th.Tensor, **kwargs) -> None:
        self.costs[self.pos] = np.asarray(cost, dtype=np.float32).reshape(self.n_envs, self.n_costs)
        self.cost_values[self.pos] = cost_value.detach().cpu().numpy().reshape(self.n_envs, self.n_costs)
        super().add(*args, **kwargs)

    def compute_cost_returns_and_advantage(self, last_cost_values: th.Tensor, dones: np.ndarray) -> None:
        """GAE(cost_gae_lambda) for every cost channel, as SB3 does for rewards."""
        last = last_cost_values.detach().cpu().numpy().reshape(self.n_envs, self.n_costs)
        last_gae = np.zeros((self.n_envs, self.n_costs), dtype=np.float32)
        for step in reversed(range(self.buffer_size)):
            if step == self.buffer_size - 1:
                non_terminal = 1.0 - dones.astype(np.float32)
                next_values = last
            else:
                non_terminal = 1.0 - self.episode_starts[step + 1]
                next_values = self.cost_values[step + 1]
            non_terminal = non_terminal[:, None]
            delta = self.costs[step] + self.cost_gamma * next_values * non_terminal - self.cost_values[step]
            last_gae = delta + self.cost_gamma * self.cost_gae_lambda * non_terminal * last_gae
            self.cost_advantages[step] = last_gae
        self.cost_returns = self.cost_advantages + self.cost_values

    def get(self, batch_size: int | None = None) -> Generator[CostRolloutBufferSamples, None, None]:
        if not self.generator_ready:
            for name in ("cost_values", "cost_advantages", "cost_returns"):
                self.__dict__[name] = self.swap_and_flatten(self.__dict__[name])
        yield from super().get(batch_size)

    def _get_samples(self, batch_inds: np.ndarray, env=None) -> CostRolloutBufferSamples:
        base = super()._get_samples(batch_inds, env)
        extra = (
            self.cost_values[batch_inds],
            self.cost_advantages[batch_inds],
            self.cost_returns[batch_inds],
        )
        return CostRolloutBufferSamples(*base, *map(self.to_torch, extra))
