"""The cost GAE is SB3's reward GAE applied to costs, channel by channel."""

from __future__ import annotations

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer

from agents.common.buffers import CostRolloutBuffer


def test_cost_gae_equals_reward_gae_on_the_same_numbers():
    rng = np.random.default_rng(0)
    obs_space, act_space = spaces.Box(-1, 1, (3,)), spaces.MultiBinary(2)
    size, n_envs, gamma, lam = 16, 2, 0.97, 0.9
    cost_buf = CostRolloutBuffer(
        size, obs_space, act_space, n_envs=n_envs, n_costs=2, cost_gamma=gamma, cost_gae_lambda=lam
    )
    ref = [
        RolloutBuffer(size, obs_space, act_space, n_envs=n_envs, gamma=gamma, gae_lambda=lam)
        for _ in range(2)
    ]
    for _ in range(size):
        obs = rng.random((n_envs, 3)).astype(np.float32)
        act = rng.integers(0, 2, (n_envs, 2))
        starts = rng.random(n_envs) < 0.2
        costs = rng.random((n_envs, 2))
        cvals = th.as_tensor(rng.random((n_envs, 2)), dtype=th.float32)
        logp = th.zeros(n_envs)
        cost_buf.add(obs, act, np.zeros(n_envs), starts, th.zeros(n_envs), logp, cost=costs, cost_value=cvals)
        for k in range(2):
            ref[k].add(obs, act, costs[:, k], starts, cvals[:, k], logp)
    dones = np.array([True, False])
    last = th.as_tensor(rng.random((n_envs, 2)), dtype=th.float32)
    cost_buf.compute_cost_returns_and_advantage(last, dones)
    for k in range(2):
        ref[k].compute_returns_and_advantage(last[:, k], dones)
        np.testing.assert_allclose(cost_buf.cost_advantages[..., k], ref[k].advantages, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(cost_buf.cost_returns[..., k], ref[k].returns, rtol=1e-5, atol=1e-6)
    batch = next(cost_buf.get(batch_size=8))
    assert batch.cost_advantages.shape == (8, 2) and batch.old_cost_values.shape == (8, 2)
