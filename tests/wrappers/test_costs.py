"""The one reader of the cost convention, shared by wrappers and agents."""

from __future__ import annotations

import numpy as np
import pytest

from prune_env import MissingCostError, read_costs


def test_vector_costs_win_and_scalars_become_vectors():
    assert read_costs({"cost": 0.3, "costs": [0.3, 0.7]}).tolist() == [0.3, 0.7]
    assert read_costs({"cost": 0.3}).tolist() == [0.3]
    assert read_costs({"latency": np.float32(2.0)}, cost_key="latency").dtype == np.float64


def test_missing_cost_names_the_keys_it_saw():
    with pytest.raises(MissingCostError, match=r"info\['cost'\].*keys \['accuracy'\]"):
        read_costs({"accuracy": 0.9})
    assert issubclass(MissingCostError, KeyError)  # callers catching KeyError still do


def test_cost_over_limit_divides_by_the_episodes_limit_and_agents_take_one():
    from agents import make_agent
    from prune_env import PruneEnv
    from prune_env.wrappers import CostOverLimit

    env = PruneEnv("fashion-mnist-mlp", action_mode="ratio", budget_limit=(0.05, 0.3), eval_samples=50)
    wrapped = CostOverLimit(env)
    assert wrapped.get_wrapper_attr("budget_limit") == 1.0
    _, info = wrapped.reset(seed=1)
    (limit,) = info["budget_limits"]
    for _ in range(2):
        *_, final = wrapped.step(np.array([0.5], dtype=np.float32))
    assert final["raw_costs"] == [final["scored"].cost]
    assert final["cost"] == pytest.approx(final["scored"].cost / limit)
    assert (final["cost"] <= 1.0) == final["scored"].satisfied
    # an env that draws its limits gets the wrapper, and a constrained agent the limit 1
    agent = make_agent("ppo-lag", env, n_steps=8, batch_size=8)
    assert float(np.atleast_1d(agent.cost_limit)[0]) == 1.0
    fixed = PruneEnv("fashion-mnist-mlp", action_mode="ratio", budget_limit=0.2, eval_samples=50)
    assert float(np.atleast_1d(make_agent("ppo-lag", fixed, n_steps=8, batch_size=8).cost_limit)[0]) == 0.2
    with pytest.raises(ValueError, match="absolute"):
        CostOverLimit(PruneEnv("fashion-mnist-mlp", budget=lambda m: 1.0, budget_limit=2.0, eval_samples=50))
