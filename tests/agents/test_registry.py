"""Every registered agent runs on PruneEnv-v0; defaults and overrides are validated."""

from __future__ import annotations

import gymnasium as gym
import pytest

import agents
from agents.registry import AGENTS, validate_hyperparameters

SHORT = {
    "ppo-lag": dict(n_steps=50, batch_size=25, n_epochs=2),
    "ppo-lag-scaled": dict(n_steps=50, batch_size=25, n_epochs=2),
    "ppo-lag-scaled-tuned": dict(n_steps=50, batch_size=25, n_epochs=2),
    "ppo-lag-sensitive": dict(n_steps=50, batch_size=25, n_epochs=2),
    "ppo-lag-paper": dict(n_steps=50, batch_size=25, n_epochs=2),
    "ppo-pid-lag": dict(n_steps=50, batch_size=25, n_epochs=2),
    "cpo": dict(n_steps=50, batch_size=25, n_epochs=2),
    "sac-lag": dict(learning_starts=50, buffer_size=1000),
    "p3o": dict(n_steps=50, batch_size=25, n_epochs=2),
    "saute-ppo": dict(n_steps=50, batch_size=25, n_epochs=2),
    "ppo-penalty": dict(n_steps=50, batch_size=25, n_epochs=2),
    "maskable-ppo-penalty": dict(n_steps=50, batch_size=25, n_epochs=2),
    "a2c-penalty": dict(n_steps=10),
    "trpo-penalty": dict(n_steps=50, batch_size=25),
    "recurrent-ppo-penalty": dict(n_steps=50, batch_size=25, n_epochs=2),
    "td3-ratio-penalty": dict(learning_starts=50, buffer_size=1000),
    "amc-ddpg": dict(learning_starts=50, buffer_size=1000),
}


def test_list_agents_names_every_registered_agent():
    assert agents.list_agents() == list(SHORT)


@pytest.mark.parametrize("name", list(SHORT))
def test_agent_runs_a_few_hundred_steps_on_prune_env(name):
    action_mode = "ratio" if AGENTS[name].action_space is gym.spaces.Box else "mask"
    env = gym.make("PruneEnv-v0", task="fashion-mnist-mlp", action_mode=action_mode, eval_samples=100)
    model = agents.make_agent(name, env, seed=0, **SHORT[name])
    model.learn(200)
    assert model.num_timesteps >= 200
    episodes = list(model.ep_info_buffer)
    assert len(episodes) >= 50  # two steps per episode on the MLP task
    if AGENTS[name].penalty:
        assert "CostPenalty" in repr(model.get_env().envs[0])
    elif AGENTS[name].clip_to_budget:
        assert "ClipToBudget" in repr(model.get_env().envs[0])
    elif AGENTS[name].saute:
        assert "Saute" in repr(model.get_env().envs[0])
    else:
        if AGENTS[name].scale_to_budget:
            assert "ScaleToBudget" in repr(model.get_env().envs[0])
        if AGENTS[name].sensitivity:
            assert "SensitivityFeatures" in repr(model.get_env().envs[0])
        assert len(model.ep_cost_buffer) >= 50


@pytest.mark.parametrize("name", list(SHORT))
def test_default_hyperparameters_are_known_keys(name):
    validate_hyperparameters(name, AGENTS[name].defaults)


def test_unknown_agent_and_unknown_hyperparameter():
    env = gym.make("PruneEnv-v0", task="fashion-mnist-mlp", eval_samples=10)
    with pytest.raises(ValueError, match="known agents: ppo-lag"):
        agents.make_agent("dqn-magic", env)
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['n_stepz'\]"):
        agents.make_agent("ppo-lag", env, n_stepz=10)
    with pytest.raises(ValueError, match="action_mode='ratio'"):
        agents.make_agent("td3-ratio-penalty", env)
