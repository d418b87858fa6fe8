"""Random candidates in the agents' action space use the budget and fit it."""

from __future__ import annotations

import numpy as np
import pytest

from prune_env.app.sampling import MIN_RATIO, fits, sample_ratios, scale_to_budget


def test_samples_fit_and_use_the_budget(mlp_env):
    rng = np.random.default_rng(0)
    for _ in range(10):
        ratios = sample_ratios(mlp_env, rng)
        assert fits(mlp_env, ratios) and ratios.min() > 0 and ratios.max() <= 1
        keep = mlp_env.keep_from_ratios(ratios)
        # one more unit in the widest-kept group would not fit: the budget is used, not wasted
        assert mlp_env.estimated_budget(keep) > mlp_env.budget_limit - 0.01
    record = mlp_env.evaluate_masks(mlp_env.keep_from_ratios(ratios))
    assert record.satisfied and record.cost == pytest.approx(
        mlp_env.estimated_budget(keep)
    )  # exact for params


def test_scaling_keeps_the_proportions_below_the_cap(mlp_env):
    ratios = np.array([0.8, 0.2])
    scaled = scale_to_budget(mlp_env, ratios)
    assert scaled[0] / scaled[1] == pytest.approx(4.0) and fits(mlp_env, scaled)
    assert np.all(scale_to_budget(mlp_env.__class__("fashion-mnist-mlp", budget_limit=1.0, eval_samples=10),
                                  ratios) == 1.0)  # fmt: skip  # a budget the dense network meets
    assert MIN_RATIO > 0
