"""AMC's agent: actions clipped so that every episode meets the budget; exploration decays."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import agents
from agents.common.noise import DecayingNormalNoise
from prune_env.wrappers import ClipToBudget


def test_every_episode_meets_the_budget_whatever_the_actions():
    env = ClipToBudget(gym.make("PruneEnv-v0", task="fashion-mnist-cnn", action_mode="ratio", budget_limit=0.1,
                                eval_samples=50).unwrapped)  # fmt: skip
    rng = np.random.default_rng(0)
    for seed in range(4):
        env.reset(seed=seed)
        done = False
        while not done:
            wanted = np.array([rng.uniform(0.3, 1.0)], dtype=np.float32)  # far above a 10% budget
            bound = env.unwrapped.max_keep_ratio()
            _, _, done, _, info = env.step(wanted)
            assert info["clipped_ratio"] == pytest.approx(min(float(wanted[0]), bound))
        assert info["constraint_satisfied"] and 0.09 < info["cost"] <= 0.1  # feasible, and the budget used


def test_clipping_needs_ratio_mode():
    with pytest.raises(ValueError, match="action_mode='ratio'"):
        ClipToBudget(gym.make("PruneEnv-v0", task="fashion-mnist-mlp", eval_samples=10).unwrapped)


def test_amc_ddpg_learns_within_the_budget():
    env = gym.make(
        "PruneEnv-v0", task="fashion-mnist-mlp", action_mode="ratio", budget_limit=0.3, eval_samples=100
    )
    model = agents.make_agent("amc-ddpg", env, seed=0, learning_starts=40, buffer_size=500)
    noise = model.action_noise
    assert isinstance(noise, DecayingNormalNoise)
    model.learn(120)
    episodes = model.num_timesteps // 2  # two steps per MLP episode; SB3 collects whole episodes
    # one decay per finished episode, plus one: SB3 resets the noise when learn() starts
    assert episodes >= 60 and noise.sigma[0] == pytest.approx(max(0.99 ** (episodes + 1), 0.02))
    chain = model.get_env().envs[0]
    for seed in range(3):
        obs, _ = chain.reset(seed=seed)
        done = False
        while not done:
            obs, _, done, _, info = chain.step(model.predict(obs, deterministic=False)[0])
        assert info["constraint_satisfied"]
