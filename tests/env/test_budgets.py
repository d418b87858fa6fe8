"""Cost signal: built-in ratios against independent counts, callables, lists, limits, cache."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from torch import nn

import prune_env
from prune_env import BudgetError
from prune_env.budgets import measure_latency


def _mlp_params(w1: int, w2: int) -> int:
    return 784 * w1 + w1 + w1 * w2 + w2 + w2 * 10 + 10


def _mlp_macs(w1: int, w2: int) -> int:
    return 784 * w1 + w1 * w2 + w2 * 10


def _episode(env, widths, seed=0):
    env.reset(seed=seed)
    info = {}
    for w in widths:
        action = np.zeros(env.max_units, dtype=np.int8)
        action[:w] = 1
        _, reward, _, _, info = env.step(action)
    return reward, info


def test_params_and_flops_ratios_match_independent_counts():
    env = gym.make(
        "PruneEnv-v0",
        task="fashion-mnist-mlp",
        budget=["params", "flops"],
        budget_limit=[0.5, 0.5],
        eval_samples=50,
    ).unwrapped
    reward, info = _episode(env, [60, 25])
    assert info["cost"] == pytest.approx(_mlp_params(60, 25) / _mlp_params(300, 100))
    assert info["costs"][1] == pytest.approx(_mlp_macs(60, 25) / _mlp_macs(300, 100), rel=1e-3)
    assert info["params_ratio"] == info["costs"][0] and info["flops_ratio"] == info["costs"][1]
    assert info["budgets"] == {"params": info["costs"][0], "flops": info["costs"][1]}
    assert info["constraint_satisfied"]
    pruned = env.export()
    assert sum(p.numel() for p in pruned.parameters()) == _mlp_params(60, 25)


def test_intermediate_steps_cost_zero_and_limits_reported(mlp_env):
    env = mlp_env
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(np.ones(300, dtype=np.int8))
    assert (reward, terminated, info["cost"], info["costs"]) == (0.0, False, 0.0, [0.0])
    _, _, _, _, info = env.step(np.ones(300, dtype=np.int8))
    assert info["cost"] == pytest.approx(1.0)
    assert env.budget_limit == 0.1 and not info["constraint_satisfied"]


def test_callable_budget_sees_physically_pruned_model_and_is_used_as_is():
    seen = []

    def hidden_units(model: nn.Module) -> float:
        seen.append(model)
        return float(model.fc1.out_features + model.fc2.out_features)

    env = prune_env.PruneEnv("fashion-mnist-mlp", budget=hidden_units, budget_limit=100.0, eval_samples=50)
    _, info = _episode(env, [40, 30])
    assert info["cost"] == 70.0 and info["constraint_satisfied"]
    assert seen[-1].fc1.weight.shape == (40, 784)
    _, info = _episode(env, [90, 30])
    assert info["cost"] == 120.0 and not info["constraint_satisfied"]


def test_budget_values_are_cached_by_width():
    calls = []

    def counting(model):
        calls.append(1)
        return 1.0

    env = prune_env.PruneEnv(
        "fashion-mnist-mlp", budget=[counting, "params"], budget_limit=[2.0, 0.5], eval_samples=50
    )
    _, first = _episode(env, [50, 50])
    env.reset(seed=1)
    a, b = np.zeros(300, dtype=np.int8), np.zeros(300, dtype=np.int8)
    a[250:], b[50:100] = 1, 1  # different units, same widths
    env.step(a)
    _, _, _, _, second = env.step(b)
    assert second["masks"] != first["masks"] and second["costs"] == first["costs"]
    assert len(calls) == 1 and env.problem.budget_cache.hits == 1


def test_multiple_budgets_constraint_needs_all():
    env = prune_env.PruneEnv(
        "fashion-mnist-mlp", budget=["params", "flops"], budget_limit=[0.5, 0.01], eval_samples=50
    )
    _, info = _episode(env, [30, 30])
    assert info["costs"][0] < 0.5 and info["costs"][1] > 0.01
    assert not info["constraint_satisfied"]
    assert env.budget_limit == [0.5, 0.01]


def test_latency_budget_is_a_positive_ratio():
    env = prune_env.PruneEnv(
        "fashion-mnist-mlp",
        budget=prune_env.Latency(batch_size=32, repeats=3),
        budget_limit=1.0,
        eval_samples=50,
    )
    _, info = _episode(env, [300, 100])
    assert 0.2 < info["cost"] < 5.0  # the dense network against itself: noise only
    assert measure_latency(env.problem.model, env.problem.example_inputs, repeats=2) > 0


@pytest.mark.parametrize(
    "budget, limit, match",
    [
        ("params", 0.0, r"\(0, 1\]"),
        ("params", 1.5, r"\(0, 1\]"),
        ("flops", float("nan"), "finite"),
        ("energy", 0.5, "unknown budget"),
        (["params", "flops"], 0.5, "one limit per budget"),
        (42, 0.5, "name, a Budget or a callable"),
    ],
)
def test_bad_budget_arguments(budget, limit, match):
    with pytest.raises(BudgetError, match=match):
        prune_env.PruneEnv("fashion-mnist-mlp", budget=budget, budget_limit=limit, eval_samples=10)


def test_callable_budget_returning_garbage_raises():
    env = prune_env.PruneEnv("fashion-mnist-mlp", budget=lambda m: "big", budget_limit=1.0, eval_samples=10)
    with pytest.raises(BudgetError, match="returned by budget .* must be a number"):
        _episode(env, [10, 10])
