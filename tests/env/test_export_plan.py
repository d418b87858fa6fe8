"""The export plan: cutting the dense tensors by the groups' slices builds exactly the network
Torch-Pruning builds, without re-tracing; where the plan cannot apply, Torch-Pruning does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ResidualNet, randomize_batchnorm
from torch import nn

from prune_env.env import PruneEnv
from prune_env.surgery.masking import cut_copy, prune_copy, random_keep
from prune_env.zoo import models


def _env(model: nn.Module, shape: tuple[int, ...]) -> PruneEnv:
    x = torch.randn(8, *shape, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(8, dtype=torch.long)
    return PruneEnv(model=model.eval(), eval_data=(x, y), eval_samples=8)


NETWORKS = {
    "fashion-cnn": (lambda: models.FashionCNN(), (1, 28, 28)),
    "residual": (lambda: ResidualNet(), (1, 8, 8)),
    "resnet-small": (lambda: models.CifarResNet([1, 1, 1], [8, 16, 32]), (3, 16, 16)),
    "resnet20": (lambda: models.resnet20(in_channels=1), (1, 28, 28)),
    "vgg11": (lambda: models.CifarVGG(11), (3, 32, 32)),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_the_plan_cuts_exactly_what_torch_pruning_prunes(name):
    build, shape = NETWORKS[name]
    torch.manual_seed(0)
    env = _env(randomize_batchnorm(build()), shape)
    assert env.problem._plan is not None
    rng = np.random.default_rng(0)
    for _ in range(3):
        keep = random_keep(env.groups, rng)
        cut = cut_copy(env.problem.model, env.problem._plan, keep).state_dict()
        reference = prune_copy(env.problem.model, env.problem.example_inputs, env.groups, keep).state_dict()
        assert list(cut) == list(reference)
        for key in reference:
            assert torch.equal(cut[key], reference[key]), key
    assert (
        env.problem.model.state_dict().keys() == build().state_dict().keys()
    )  # the dense network is untouched


def test_cut_layers_report_their_new_sizes():
    torch.manual_seed(0)
    env = _env(models.FashionCNN(), (1, 28, 28))
    keep = [np.arange(g.width) % 2 == 0 for g in env.groups]
    pruned = cut_copy(env.problem.model, env.problem._plan, keep)
    conv, bn = pruned.features[3], pruned.features[4]
    assert conv.out_channels == conv.weight.shape[0] == 8 and conv.in_channels == conv.weight.shape[1] == 8
    assert bn.num_features == bn.running_mean.numel() == 8
    assert pruned.fc.in_features == pruned.fc.weight.shape[1] == 32 * 9 and pruned.fc.out_features == 64
    pruned(torch.randn(2, 1, 28, 28))  # runs


class InstanceNormNet(nn.Module):
    """An InstanceNorm in a group: beyond the plan, so Torch-Pruning exports (and is checked)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 8, 3, padding=1)
        self.norm = nn.InstanceNorm2d(8, affine=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.norm(self.a(x))).mean((2, 3)))


def test_a_layer_beyond_the_plan_falls_back_to_torch_pruning():
    torch.manual_seed(0)
    env = _env(InstanceNormNet(), (1, 8, 8))
    assert env.problem._plan is None
    record = env.problem.score({"a": [0, 2, 4]})
    assert record.widths == {"a": 3} and record.params_ratio < 1.0
    assert env.problem.export({"a": [0, 2, 4]}).norm.weight.shape == (3,)


def test_keep_all_scores_the_dense_network_without_exposing_it(mlp_env):
    keep_all = {g.name: list(range(g.width)) for g in mlp_env.groups}
    before = {k: v.clone() for k, v in mlp_env.problem.model.state_dict().items()}
    mlp_env.problem.score(keep_all)
    exported = mlp_env.export()
    assert exported is not mlp_env.problem.model
    with torch.no_grad():
        exported.fc1.weight.zero_()
    assert all(torch.equal(v, before[k]) for k, v in mlp_env.problem.model.state_dict().items())


def test_episodes_never_trace_again(monkeypatch):
    torch.manual_seed(0)
    env = _env(models.FashionCNN(), (1, 28, 28))

    def traced(*args, **kwargs):
        raise AssertionError("the dependency graph was rebuilt during an episode")

    monkeypatch.setattr("prune_env.surgery.masking.build_dependency_graph", traced)
    env.reset(seed=0)
    for _ in env.groups:
        *_, info = env.step(np.arange(env.max_units) % 3 == 0)
    assert info["scored"].widths["features.0"] == 6
