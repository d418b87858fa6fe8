"""P3O's exact penalty compares like with like: the per-step cost surrogate on the episodic scale
of the violation it is added to."""

from __future__ import annotations

import pytest
import torch as th
from toy_envs import GreedyBreaksLimitEnv

import agents


def test_the_penalty_hinge_is_on_the_episodic_scale():
    env = GreedyBreaksLimitEnv(action="box", horizon=5)  # the cost of every step counts toward the limit
    model = agents.make_agent("p3o", env, seed=0, n_steps=50, batch_size=50, kappa=20.0)
    model.learn(50)  # one rollout of ten episodes and one update: J_C - d and L are known
    assert model._episode_length == 5.0
    violation = float(model._violation[0])
    assert violation > 0  # the random start spends more than the limit
    batch = next(model.rollout_buffer.get(batch_size=None))
    ratio = 1.0 + 0.2 * th.randn(len(batch.advantages), generator=th.Generator().manual_seed(0))
    loss = model._policy_loss(batch, ratio, 0.2, th.zeros(1))

    advantages, cost_advantages = model._advantages(batch)
    reward_loss = -th.min(advantages * ratio, advantages * th.clamp(ratio, 0.8, 1.2)).mean()
    per_step = th.max(cost_advantages[:, 0] * ratio, cost_advantages[:, 0] * th.clamp(ratio, 0.8, 1.2)).mean()
    expected = reward_loss + 20.0 * th.relu(5.0 * per_step + violation)  # L = 5 steps per episode
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert abs(float(per_step)) > 1e-3  # the scale matters: without L the loss differs
