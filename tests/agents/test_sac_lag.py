"""SAC-Lag: the replay buffer keeps each transition's cost; the multiplier moves with the
episodes' costs; save and load keep the multiplier and the cost critic."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from toy_envs import TradeoffEnv

from agents import SACLag

FAST = dict(learning_starts=20, batch_size=16, buffer_size=500, policy_kwargs=dict(net_arch=[16]))


def test_costs_are_stored_with_their_transitions_and_drive_the_multiplier():
    model = SACLag("MlpPolicy", TradeoffEnv(action="box"), cost_limit=0.1, seed=0,
                   lagrange_kwargs=dict(initial_value=0.0, lr=1.0), **FAST)  # fmt: skip
    model.learn(100)
    buffer = model.replay_buffer
    assert buffer.costs[:100, 0].max() > 0
    # SAC stores actions scaled to [-1, 1]; the stored cost is the env's cost of the action it took
    low, high = model.action_space.low, model.action_space.high
    unscaled = low + 0.5 * (buffer.actions[:100, 0] + 1.0) * (high - low)
    np.testing.assert_allclose(buffer.costs[:100, 0], np.clip(unscaled, 0, 1) @ TradeoffEnv.COST, rtol=1e-5)
    sample = buffer.sample(8)
    assert sample.costs.shape == (8, 1)
    assert len(model.ep_cost_buffer) == 20 and model.lagrange_multiplier > 0  # every episode costs > 0.1


def test_save_and_load_keep_the_multiplier_and_the_cost_critic(tmp_path):
    model = SACLag("MlpPolicy", TradeoffEnv(action="box"), cost_limit=0.1, seed=0, **FAST)
    model.learn(60)
    model.save(tmp_path / "sac_lag")
    loaded = SACLag.load(tmp_path / "sac_lag", env=TradeoffEnv(action="box"))
    assert loaded.lagrange_multiplier == pytest.approx(model.lagrange_multiplier)
    for a, b in zip(model.cost_critic.parameters(), loaded.cost_critic.parameters()):
        assert th.equal(a, b)
