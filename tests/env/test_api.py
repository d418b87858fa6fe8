"""Registration, spaces and the two env checkers on PruneEnv-v0."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import prune_env
from prune_env.env import DESCRIPTOR_NAMES


@pytest.mark.parametrize("action_mode", ["mask", "ratio"])
def test_env_checkers_pass_on_default_task(action_mode):
    env = gym.make("PruneEnv-v0", action_mode=action_mode, eval_samples=100)
    assert env.unwrapped.problem.task == "fashion-mnist-cnn"
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)


def test_make_without_import_uses_module_prefix():
    env = gym.make("prune_env:PruneEnv-v0", task="fashion-mnist-mlp", eval_samples=50)
    assert isinstance(env.unwrapped, prune_env.PruneEnv)


def test_spaces_and_episode_length(mlp_env):
    env = mlp_env
    assert env.problem.group_names == ["fc1", "fc2"]  # classifier outputs are never a step
    assert env.max_units == 300
    assert env.action_space == gym.spaces.MultiBinary(300)
    assert env.observation_space.shape == (len(DESCRIPTOR_NAMES) + 300,)
    obs, _ = env.reset(seed=0)
    steps = 0
    terminated = False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert not truncated
        assert isinstance(info["cost"], float)
        steps += 1
    assert steps == env.num_groups == 2
    assert 0.0 <= reward <= 1.0
    assert env.observation_space.contains(obs)


def test_step_before_reset_raises():
    env = gym.make("PruneEnv-v0", task="fashion-mnist-mlp", eval_samples=50).unwrapped
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.ones(env.max_units, dtype=np.int8))


def test_observation_descriptor_describes_current_group(mlp_env):
    env = mlp_env
    obs, _ = env.reset(seed=0)
    d = dict(zip(DESCRIPTOR_NAMES, obs[: len(DESCRIPTOR_NAMES)]))
    assert d["group_index"] == 0 and d["is_linear"] == 1 and d["is_conv"] == 0
    assert d["width"] == pytest.approx(1.0)  # fc1 is the widest group
    assert d["budget_used"] == pytest.approx(1.0) and d["budget_limit"] == pytest.approx(0.1)
    assert d["budget_remaining"] == pytest.approx(-0.9)
    # importance: L1 norm of each fc1 row, scaled by the largest
    rows = env.problem.model.fc1.weight.detach().abs().sum(1).numpy()
    np.testing.assert_allclose(obs[len(DESCRIPTOR_NAMES) :], rows / rows.max(), rtol=1e-5)
    keep = np.zeros(300, dtype=np.int8)
    keep[:30] = 1
    obs, *_ = env.step(keep)
    d = dict(zip(DESCRIPTOR_NAMES, obs[: len(DESCRIPTOR_NAMES)]))
    dense = sum(p.numel() for p in env.problem.model.parameters())
    expected = (784 * 30 + 30 + 30 * 100 + 100 + 100 * 10 + 10) / dense  # fc2 still dense
    assert d["budget_used"] == pytest.approx(expected, rel=1e-5)
    assert d["progress"] == pytest.approx(0.5)
    width_fc2 = 100 / 300
    assert d["width"] == pytest.approx(width_fc2)
    assert not obs[len(DESCRIPTOR_NAMES) + 100 :].any()  # padding past fc2's width


def test_action_masks_for_maskable_ppo(mlp_env):
    env = mlp_env
    env.reset(seed=0)
    masks = env.action_masks().reshape(-1, 2)
    assert masks.shape == (300, 2) and masks.all()
    env.step(np.ones(300, dtype=np.int8))
    masks = env.action_masks().reshape(-1, 2)
    assert masks[:100].all()
    assert masks[100:, 0].all() and not masks[100:, 1].any()
