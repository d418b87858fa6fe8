"""Random candidates in the agents' action space use the budget and fit it."""

from __future__ import annotations

import numpy as np
import pytest

from prune_env.app.sampling import MIN_RATIO, fits, sample_ratios, scale_to_budget


def test_samples_fit_and_use_the_budget(mlp_problem):
    rng = np.random.default_rng(0)
    for _ in range(10):
        ratios = sample_ratios(mlp_problem, rng)
        assert fits(mlp_problem, ratios) and ratios.min() > 0 and ratios.max() <= 1
        keep = mlp_problem.keep_from_ratios(ratios)
        # one more unit in the widest-kept group would not fit: the budget is used, not wasted
        assert mlp_problem.estimated_budget(keep) > mlp_problem.budget_limit - 0.01
    record = mlp_problem.score(mlp_problem.keep_from_ratios(ratios))
    assert record.satisfied and record.cost == pytest.approx(
        mlp_problem.estimated_budget(keep)
    )  # exact for params


def test_scaling_keeps_the_proportions_below_the_cap(mlp_problem):
    ratios = np.array([0.8, 0.2])
    scaled = scale_to_budget(mlp_problem, ratios)
    assert scaled[0] / scaled[1] == pytest.approx(4.0) and fits(mlp_problem, scaled)
    assert np.all(scale_to_budget(mlp_problem.__class__("fashion-mnist-mlp", budget_limit=1.0, eval_samples=10),
                                  ratios) == 1.0)  # fmt: skip  # a budget the dense network meets
    assert MIN_RATIO > 0
