"""Errors leave the env unchanged; reset restores dense weights; seeds make runs repeatable."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import random_trace

import prune_env
from prune_env import InvalidActionError


def _first_obs(env):
    return env.reset(seed=3)[0]


@pytest.mark.parametrize(
    "action, match",
    [
        (np.ones(299, dtype=np.int8), "shape"),
        (np.ones((300, 1), dtype=np.int8), "shape"),
        (np.full(300, 2, dtype=np.int64), "only 0 and 1"),
        (np.full(300, 0.5, dtype=np.float32), "only 0 and 1"),
        (np.full(300, np.nan, dtype=np.float32), "NaN"),
        (np.array(["1"] * 300), "dtype"),
    ],
)
def test_invalid_mask_action_raises_and_env_is_unchanged(mlp_env, action, match):
    env = mlp_env
    obs0 = _first_obs(env)
    with pytest.raises(InvalidActionError, match=match):
        env.step(action)
    assert isinstance(InvalidActionError("x"), ValueError)
    # the same step can be retried, and sees the same state
    obs1, reward, terminated, _, info = env.step(np.ones(300, dtype=np.int8))
    assert not terminated and info["group"] == "fc1"
    env2_obs = _first_obs(env)
    np.testing.assert_array_equal(obs0, env2_obs)


@pytest.mark.parametrize(
    "action", [np.array([1.5], dtype=np.float32), np.array([-0.1]), np.array([np.nan]), np.array([0.2, 0.3])]
)
def test_invalid_ratio_action_raises(action):
    env = gym.make("PruneEnv-v0", task="fashion-mnist-mlp", action_mode="ratio", eval_samples=50).unwrapped
    env.reset(seed=0)
    with pytest.raises(InvalidActionError):
        env.step(action)
    _, _, terminated, _, info = env.step(np.array([0.5], dtype=np.float32))
    assert info["group"] == "fc1" and info["kept_units"] == 150 and not terminated


def test_all_zero_mask_keeps_most_important_unit(mlp_env):
    env = mlp_env
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(300, dtype=np.int8))
    assert info["forced_keep"] and info["kept_units"] == 1
    _, _, terminated, _, info = env.step(np.ones(300, dtype=np.int8))
    assert terminated and not info["forced_keep"]
    best = int(env.problem.model.fc1.weight.abs().sum(1).argmax())
    assert info["masks"]["fc1"] == [best]
    assert info["widths"] == {"fc1": 1, "fc2": 100}


def test_entries_past_width_are_ignored(mlp_env):
    env = mlp_env
    env.reset(seed=0)
    env.step(np.ones(300, dtype=np.int8))
    action = np.zeros(300, dtype=np.int8)
    action[:10] = 1
    action[100:] = 1  # past fc2's width of 100
    _, _, _, _, info = env.step(action)
    assert info["masks"]["fc2"] == list(range(10))


def test_ratio_mode_keeps_largest_l1_units():
    env = gym.make("PruneEnv-v0", task="fashion-mnist-mlp", action_mode="ratio", eval_samples=50).unwrapped
    env.reset(seed=0)
    env.step(np.array([0.1], dtype=np.float32))
    _, _, _, _, info = env.step(np.array([0.0], dtype=np.float32))
    l1 = env.problem.model.fc1.weight.detach().abs().sum(1)
    assert sorted(info["masks"]["fc1"]) == sorted(torch.topk(l1, 30).indices.tolist())
    assert info["forced_keep"] and info["widths"]["fc2"] == 1


def test_reset_restores_dense_weights_bit_for_bit():
    env = gym.make("PruneEnv-v0", task="fashion-mnist-mlp", eval_samples=50, finetune_steps=3).unwrapped
    dense, _ = prune_env.load_checkpoint("fashion-mnist-mlp")
    reference = {k: v.clone() for k, v in dense.state_dict().items()}
    for episode in range(3):
        env.reset(seed=episode)
        for _ in range(env.num_groups):
            env.step(env.action_space.sample())
        env.reset()
        for name, tensor in env.problem.model.state_dict().items():
            assert torch.equal(tensor.cpu(), reference[name]), name
        for name, tensor in env.problem._masked.state_dict().items():
            assert torch.equal(tensor.cpu(), reference[name]), name


def _rollout(seed: int, finetune_steps: int = 0):
    env = gym.make(
        "PruneEnv-v0", task="fashion-mnist-mlp", eval_samples=100, finetune_steps=finetune_steps
    ).unwrapped
    return random_trace(env, seed, episodes=2)


def test_same_seed_same_actions_same_results():
    a, b = _rollout(7, finetune_steps=2), _rollout(7, finetune_steps=2)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = _rollout(8)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))


def test_finetune_steps_is_settable_and_validated(mlp_env):
    env = mlp_env
    env.finetune_steps = 4
    assert env.finetune_steps == 4
    with pytest.raises(ValueError, match=">= 0"):
        env.finetune_steps = -1
    env.finetune_steps = 0


def test_finetune_changes_reward_but_not_dense_weights():
    env = gym.make("PruneEnv-v0", task="fashion-mnist-mlp", eval_samples=300).unwrapped
    keep = np.zeros(300, dtype=np.int8)
    keep[:20] = 1

    def score():
        env.reset(seed=0)
        env.step(keep)
        return env.step(keep)[1]

    before = score()
    env.finetune_steps = 30
    after = score()
    assert after != before
    assert after > before  # 30 Adam steps recover some of a 93%-pruned MLP's accuracy
