"""Importance criteria equal independent computations; the strong baselines meet the budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F

import prune_env
from prune_env.app.baselines import bn_scale, evolution, taylor
from prune_env.app.importance import bn_scale_importance, taylor_importance


@pytest.fixture(scope="module")
def cnn():
    return prune_env.PruneProblem("fashion-mnist-cnn", budget="params", budget_limit=0.25, eval_samples=300)


def test_taylor_equals_a_hand_computed_group_taylor(mlp_problem):
    scores = taylor_importance(mlp_problem, batches=1, batch_size=32, seed=5)
    model = mlp_problem.model
    x, y = mlp_problem.training_batch(np.random.default_rng(5), 32)
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    # fc2's unit u owns row u of fc2.weight, fc2.bias[u] and column u of classifier.weight
    wg = lambda p: (p * p.grad).detach()  # noqa: E731
    by_unit = wg(model.fc2.weight).sum(1) + wg(model.fc2.bias) + wg(model.classifier.weight).sum(0)
    model.zero_grad()
    fc2 = [g.index for g in mlp_problem.groups if g.name == "fc2"][0]
    np.testing.assert_allclose(scores[fc2], (by_unit**2).double().numpy(), rtol=1e-5, atol=1e-12)


def test_bn_scale_reads_the_groups_batchnorm(cnn, mlp_problem):
    scores = bn_scale_importance(cnn)
    first = [g.index for g in cnn.groups if g.name == "features.0"][0]
    np.testing.assert_allclose(scores[first], cnn.model.features[1].weight.detach().abs().double().numpy())
    fc = [g.index for g in cnn.groups if g.name == "fc"][0]
    assert scores[fc] is None  # a Linear group without BatchNorm
    with pytest.raises(prune_env.NotApplicableError, match="has no BatchNorm layer"):
        bn_scale_importance(mlp_problem)


@pytest.mark.parametrize("method", [taylor, bn_scale])
def test_global_criteria_meet_the_budget_tightly(cnn, method):
    result = method(cnn)
    chosen = result.chosen
    assert chosen.satisfied and chosen.cost <= 0.25 and result.evaluations == 13
    assert chosen.cost > 0.2  # the bisection uses the budget, it does not just fit under it
    assert min(chosen.widths.values()) >= 1


def test_evolution_spends_its_evaluations_and_returns_the_best_it_saw(cnn):
    result = evolution(cnn, evaluations=20, seed=1, population=6, sample=3)
    assert result.evaluations == result.candidates == 20
    assert result.chosen.satisfied and result.chosen.source == "evolution"
    again = evolution(cnn, evaluations=20, seed=1, population=6, sample=3)
    assert again.chosen == result.chosen  # seeded


def test_taylor_on_a_grouped_convolution_sums_each_convolution_group_once():
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=4),
                          nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 3)).eval()  # fmt: skip
    x, y = torch.randn(16, 3, 4, 4), torch.randint(0, 3, (16,))
    problem = prune_env.PruneProblem(model=model, eval_data=(x, y), train_data=(x, y), eval_samples=16)
    (tied,) = [g for g in problem.groups if g.tied]
    (scores,) = [
        s
        for s, g in zip(taylor_importance(problem, batches=1, batch_size=16, seed=1), problem.groups)
        if g.tied
    ]
    inputs, labels = problem.training_batch(np.random.default_rng(1), 16)
    model.zero_grad()
    F.cross_entropy(model(inputs), labels).backward()
    wg = lambda p: (p * p.grad).detach()  # noqa: E731
    # convolution group k: conv 0's rows 2k, 2k+1 (weight and bias) and the grouped conv's rows 2k, 2k+1
    per_row = wg(model[0].weight).flatten(1).sum(1) + wg(model[0].bias)
    per_row = per_row + wg(model[2].weight).flatten(1).sum(1) + wg(model[2].bias)
    per_row = per_row + wg(model[5].weight).view(3, 8, 16).sum(
        (0, 2)
    )  # the Linear's inputs of those channels
    by_group = per_row.view(4, 2).sum(1)
    assert tied.width == 4
    np.testing.assert_allclose(scores, (by_group**2).double().numpy(), rtol=1e-5, atol=1e-12)
