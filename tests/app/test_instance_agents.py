"""Every ratio-mode agent of the registry learns on an env that draws its task and its limit per
episode (one observation layout for every network, the cost as a share of the drawn limit)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

import agents
from agents.registry import AGENTS, known_hyperparameters, wrap_for_agent
from prune_env import PruneEnv
from prune_env.app import EpisodeRecorder

TASKS = ["fashion-mnist-mlp", "fashion-mnist-cnn-w0.5"]
RATIO_AGENTS = [
    n for n, s in AGENTS.items() if s.action_space in (None, gym.spaces.Box) and not s.sensitivity
]


@pytest.fixture(scope="module")
def env():
    return PruneEnv(TASKS, action_mode="ratio", budget_limit=(0.05, 0.3), eval_samples=50)


@pytest.mark.parametrize("name", RATIO_AGENTS)
def test_ratio_agent_learns_over_tasks_and_drawn_limits(name, env):
    spec = AGENTS[name]
    off_policy = issubclass(spec.cls, OffPolicyAlgorithm)
    short = (
        dict(learning_starts=8, buffer_size=500, batch_size=8)
        if off_policy
        else dict(n_steps=16, batch_size=16, n_epochs=1)
    )
    short = {k: v for k, v in short.items() if k in known_hyperparameters(spec.cls)}
    env.reset(seed=0)
    model = agents.make_agent(name, env, seed=0, **short)
    if spec.constrained and not spec.saute:
        assert float(np.atleast_1d(model.cost_limit)[0]) == 1.0  # CostOverLimit: one limit for all draws
    recorder = EpisodeRecorder(env)
    model.learn(32, callback=recorder)
    assert {len(e.widths) for e in recorder.episodes} == {2, 6}  # episodes of both networks
    assert len({e.limits[0] for e in recorder.episodes}) == len(recorder.episodes)  # each its own limit


def test_sensitivity_features_refuse_a_task_list(env):
    with pytest.raises(ValueError, match="one task"):
        wrap_for_agent("ppo-lag-sensitive", env)
