"""The shipped ResNet-20 task: residual streams coupled into one group each, groups in forward
order, the observation's estimate exact on every step, exports proven, resets and seeds exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_trace

import prune_env
from prune_env.budgets import count_macs, count_params
from prune_env.env import DESCRIPTOR_NAMES
from prune_env.surgery.masking import AGREEMENT_TOLERANCE, masked_copy, prune_copy, random_keep

TASK = "fashion-mnist-resnet20"
# the stem's stream (stage 1), then each block's inner conv; a stage's stream is led by the
# 1x1 shortcut conv of its first block and comes after that block's inner conv in forward order
GROUPS = [
    "conv1", "layers.0.0.conv1", "layers.0.1.conv1", "layers.0.2.conv1",
    "layers.1.0.conv1", "layers.1.0.shortcut.0", "layers.1.1.conv1", "layers.1.2.conv1",
    "layers.2.0.conv1", "layers.2.0.shortcut.0", "layers.2.1.conv1", "layers.2.2.conv1",
]  # fmt: skip
WIDTHS = [16, 16, 16, 16, 32, 32, 32, 32, 64, 64, 64, 64]


@pytest.fixture(scope="module")
def env():
    return prune_env.PruneEnv(TASK, budget="params", budget_limit=0.3, eval_samples=100)


def _outputs(group) -> set[str]:
    return {s.module for s in group.slices if s.side == "out"}


def test_groups_in_forward_order_with_residual_streams_coupled(env):
    assert env.problem.group_names == GROUPS
    assert [g.width for g in env.groups] == WIDTHS
    streams = {g.name: _outputs(g) for g in env.groups if g.name in ("conv1", "layers.1.0.shortcut.0", "layers.2.0.shortcut.0")}  # fmt: skip

    # every block's second conv (and its BatchNorm) writes into its stage's stream: one decision
    # per stream, shared by the stem or shortcut that opens it
    def block_outputs(stage):
        return {f"layers.{stage}.{b}.{layer}" for b in range(3) for layer in ("conv2", "bn2")}

    assert streams["conv1"] == {"conv1", "bn1", *block_outputs(0)}
    for stage in (1, 2):
        shortcut = {f"layers.{stage}.0.shortcut.0", f"layers.{stage}.0.shortcut.1"}
        assert streams[f"layers.{stage}.0.shortcut.0"] == shortcut | block_outputs(stage)
    inner = env.groups[GROUPS.index("layers.1.1.conv1")]
    assert _outputs(inner) == {"layers.1.1.conv1", "layers.1.1.bn1"}
    # the classifier reads the last stream, so the last stream's group cuts its inputs
    assert any(s.module == "classifier" and s.side == "in" for s in env.groups[9].slices)


@pytest.mark.parametrize("budget", ["params", "flops"])
def test_observation_budget_is_exact_on_every_step(budget):
    """Parameters are counted exactly, and so are FLOPs as the FLOPs budget counts them (convs
    with their biases, BatchNorm, pooling: prune_env.surgery.estimate); the final cost is measured."""
    env = prune_env.PruneEnv(TASK, budget=budget, budget_limit=0.3, eval_samples=50)
    dense = env.problem.model
    x = env.problem.example_inputs

    def measure(model):
        return count_params(model) if budget == "params" else count_macs(model, x[:1])

    rng = np.random.default_rng(1)
    actions = random_keep(env.groups, rng)
    obs, _ = env.reset(seed=0)
    keep = [np.ones(w, dtype=bool) for w in WIDTHS]
    used = DESCRIPTOR_NAMES.index("budget_used")
    for index, action in enumerate(actions):
        padded = np.zeros(env.max_units, dtype=np.int8)
        padded[: len(action)] = action
        obs, _, done, _, info = env.step(padded)
        keep[index] = action.astype(bool)
        pruned = prune_copy(dense, x, env.groups, keep)
        assert obs[used] == pytest.approx(measure(pruned) / measure(dense), rel=1e-6), GROUPS[index]
    measured = count_params if budget == "params" else (lambda model: count_macs(model, x))
    assert done and info["cost"] == pytest.approx(measured(pruned) / measured(dense), rel=1e-6)
    assert [len(m) for m in info["masks"].values()] == [int(k.sum()) for k in keep]


def test_masked_network_equals_its_export_on_real_images(env):
    images = env.problem.training_batch(np.random.default_rng(0), 64)[0]
    rng = np.random.default_rng(2)
    for _ in range(3):
        keep = random_keep(env.groups, rng)
        masked = masked_copy(env.problem.model, env.groups, keep)
        pruned = env.problem.export(keep)
        with torch.no_grad():
            gap = float((masked(images) - pruned(images)).abs().max())
        assert gap <= AGREEMENT_TOLERANCE
        assert count_params(pruned) < count_params(env.problem.model)


def test_reset_restores_dense_weights_after_a_finetuned_episode():
    env = prune_env.PruneEnv(TASK, budget_limit=0.3, eval_samples=50, finetune_steps=2)
    reference = {k: v.clone() for k, v in prune_env.load_checkpoint(TASK)[0].state_dict().items()}
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(env.num_groups):
        env.step(env.action_space.sample())
    env.reset()
    for name, tensor in env.problem.model.state_dict().items():
        assert torch.equal(tensor, reference[name]), name


def _episode(seed: int):
    env = prune_env.PruneEnv(TASK, action_mode="ratio", budget_limit=0.3, eval_samples=50, finetune_steps=2)
    return random_trace(env, seed)


def test_same_seed_same_episode():
    a, b = _episode(5), _episode(5)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a, _episode(6)))
