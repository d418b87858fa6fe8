"""The FLOPs estimate (observation's budget_used, ClipToBudget / ScaleToBudget bounds, the searches'
scaling) equals what the FLOPs budget measures on the physically pruned network, on every zoo
task: convolutions with their biases, BatchNorm, activations and pooling included."""

from __future__ import annotations

import numpy as np
import pytest

import prune_env
from prune_env.budgets import count_macs


@pytest.mark.parametrize("task", ["fashion-mnist-mlp", "fashion-mnist-cnn", "fashion-mnist-resnet20"])
def test_flops_estimate_equals_the_measured_ratio(task):
    env = prune_env.PruneEnv(task, action_mode="ratio", budget="flops", budget_limit=0.3, eval_samples=10)
    example = env.problem.example_inputs[:1]
    dense = count_macs(env.problem.model, example)
    rng = np.random.default_rng(0)
    for _ in range(3):
        keep = env.problem.keep_from_ratios(rng.uniform(0.02, 1.0, env.num_groups))
        assert env.problem.estimated_budget(keep) == pytest.approx(
            count_macs(env.problem.export(keep), example) / dense, abs=1e-12
        )


def test_scaled_actions_meet_a_flops_budget_exactly_at_its_edge():
    from prune_env.wrappers import ScaleToBudget

    env = ScaleToBudget(prune_env.PruneEnv("fashion-mnist-cnn", action_mode="ratio", budget="flops",
                                           budget_limit=0.3, eval_samples=10))  # fmt: skip
    env.reset(seed=0)
    done = False
    while not done:  # spend everything the budget allows on every group in turn
        _, _, done, _, info = env.step(np.array([1.0], dtype=np.float32))
    assert info["constraint_satisfied"] and 0.29 < info["cost"] <= 0.3
