"""Masked networks equal their physically pruned copies, for every zoo architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ResidualNet, randomize_batchnorm

from prune_env.budgets import count_params
from prune_env.surgery.dependency_groups import analyze
from prune_env.surgery.estimate import StructureEstimate
from prune_env.surgery.masking import AGREEMENT_TOLERANCE, masked_copy, prune_copy, random_keep
from prune_env.zoo import models

ZOO = {
    "fashion-mnist-mlp": (models.LeNet300100, (1, 28, 28)),
    "fashion-mnist-cnn": (models.FashionCNN, (1, 28, 28)),
    "fashion-mnist-resnet20": (lambda: models.resnet20(in_channels=1), (1, 28, 28)),
    "cifar10-vgg11": (lambda: models.CifarVGG(11), (3, 32, 32)),
    "cifar10-vgg16": (lambda: models.CifarVGG(16), (3, 32, 32)),
    "cifar10-vgg19": (lambda: models.CifarVGG(19), (3, 32, 32)),
    "cifar10-resnet18": (models.resnet18, (3, 32, 32)),
    "cifar10-resnet56": (models.resnet56, (3, 32, 32)),
}
EXPECTED_GROUPS = {
    "fashion-mnist-mlp": 2,
    "fashion-mnist-cnn": 6,
    "fashion-mnist-resnet20": 12,
    "cifar10-vgg11": 8,
    "cifar10-vgg16": 13,
    "cifar10-vgg19": 16,
    "cifar10-resnet18": 12,
    "cifar10-resnet56": 30,
}


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_masked_logits_equal_pruned_logits(name):
    build, shape = ZOO[name]
    torch.manual_seed(0)
    model = randomize_batchnorm(build())
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(1))
    analysis = analyze(model, x[:2])
    assert len(analysis.groups) == EXPECTED_GROUPS[name]
    assert analysis.classifier == "classifier"
    estimate = StructureEstimate(analysis, model)
    rng = np.random.default_rng(0)
    for _ in range(2):
        keep = random_keep(analysis.groups, rng)
        masked = masked_copy(model, analysis.groups, keep)
        pruned = prune_copy(model, x[:2], analysis.groups, keep)
        with torch.no_grad():
            want, got = masked(x), pruned(x)
        assert got.shape == want.shape == (4, 10)
        assert float((got - want).abs().max()) <= AGREEMENT_TOLERANCE
        # pruning really removed parameters, and the analytic estimate counts them exactly
        assert count_params(pruned) < count_params(model)
        params_ratio, _ = estimate.ratios(keep)
        assert params_ratio == pytest.approx(count_params(pruned) / count_params(model), abs=1e-9)


def test_masking_a_unit_changes_the_output():
    """Guard against a mask that does nothing: masked output must differ from dense."""
    torch.manual_seed(0)
    model = randomize_batchnorm(ResidualNet())
    x = torch.randn(4, 1, 8, 8)
    analysis = analyze(model, x[:2])
    keep = [np.ones(g.width, dtype=bool) for g in analysis.groups]
    keep[0][0] = False
    with torch.no_grad():
        assert not torch.allclose(masked_copy(model, analysis.groups, keep)(x), model(x))
