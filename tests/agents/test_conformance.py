"""Every constrained agent of the registry, on a small CMDP where the unconstrained optimum
breaks the limit 5x: the final episodic cost stays within 1.5x the limit while the reward clearly
beats a random policy's; and a short learn on PruneEnv-v0 logs rollout/ep_cost_mean.
Parametrized over the registry, so a new constrained agent is covered without editing this."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from toy_envs import TradeoffEnv

import agents
from agents.registry import AGENTS

RANDOM_REWARD = 1.5  # E[reward] of uniformly random unit choices over an episode
ON_POLICY = dict(n_steps=200, batch_size=100, learning_rate=1e-3, policy_kwargs=dict(net_arch=[16]))
OFF_POLICY = dict(learning_starts=500, batch_size=64, policy_kwargs=dict(net_arch=[32, 32]))
STEPS = {"sac-lag": 6_000}  # off-policy: one gradient step per environment step


def _toy_agent(name: str, env: TradeoffEnv, **kwargs):
    hyper = OFF_POLICY if AGENTS[name].cls.__name__.startswith("SAC") else ON_POLICY
    return agents.make_agent(name, env, seed=0, **hyper, **kwargs)


TOY = ON_POLICY


class EpisodeTotals(BaseCallback):
    """Raw reward and cost of every finished episode, whatever the wrappers did to the reward."""

    def __init__(self):
        super().__init__()
        self.episodes: list[tuple[float, float]] = []
        self._reward = self._cost = 0.0

    def _on_step(self) -> bool:
        info, done = self.locals["infos"][0], self.locals["dones"][0]
        self._reward += info["raw_reward"]
        self._cost += info["cost"]
        if done:
            self.episodes.append((self._reward, self._cost))
            self._reward = self._cost = 0.0
        return True


PRUNE_ENV_ONLY = [
    n for n in agents.constrained_agents() if AGENTS[n].scale_to_budget or AGENTS[n].sensitivity
]


@pytest.mark.parametrize("name", [n for n in agents.constrained_agents() if n not in PRUNE_ENV_ONLY])
def test_constrained_agent_keeps_the_limit_and_earns(name):
    """(ppo-lag-scaled and ppo-lag-sensitive read PruneEnv's estimate or score its masks: they are
    the same PPOLag as ppo-lag here, run on PruneEnv below.)"""
    env = TradeoffEnv(action="box" if AGENTS[name].action_space is gym.spaces.Box else "multibinary")
    model = _toy_agent(name, env, cost_limit=env.budget_limit)
    totals = EpisodeTotals()
    model.learn(STEPS.get(name, 16_000), callback=totals)
    reward, cost = np.mean(totals.episodes[-200:], axis=0)
    assert cost <= 1.5 * env.budget_limit, (reward, cost)
    assert reward >= RANDOM_REWARD + 0.5, (reward, cost)


def test_the_toy_cmdp_binds_for_unconstrained_ppo():
    model = agents.make_agent("ppo-penalty", TradeoffEnv(), seed=0, penalty_coef=0.0, **TOY)
    totals = EpisodeTotals()
    model.learn(16_000, callback=totals)
    reward, cost = np.mean(totals.episodes[-200:], axis=0)
    assert cost > 3 * TradeoffEnv().budget_limit and reward > 2.7


@pytest.mark.parametrize("name", agents.constrained_agents())
def test_constrained_agent_learns_on_prune_env_and_logs_its_cost(name, tmp_path):
    action_mode = "ratio" if AGENTS[name].action_space is gym.spaces.Box else "mask"
    env = gym.make("PruneEnv-v0", task="fashion-mnist-mlp", action_mode=action_mode, eval_samples=100)
    short = (
        dict(learning_starts=50, buffer_size=1000)
        if name == "sac-lag"
        else dict(n_steps=50, batch_size=25, n_epochs=2)
    )
    model = agents.make_agent(name, env, seed=0, **short)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(150)
    logged = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    if AGENTS[name].saute:
        assert "rollout/ep_rew_mean" in logged  # plain PPO: the cost lives in its wrapper
    else:
        assert "rollout/ep_cost_mean" in logged


def test_cost_limit_is_for_constrained_agents_only():
    with pytest.raises(ValueError, match="not a constrained agent"):
        agents.make_agent("ppo-penalty", TradeoffEnv(), cost_limit=0.5)
