"""Grouped and depthwise convolutions: a unit is a whole convolution group (with the channels
that feed it), the export cuts whole groups, and parameters and MACs stay exactly estimated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import conv_linear_macs, randomize_batchnorm
from torch import nn

from prune_env import UnsupportedModelError
from prune_env.budgets import count_macs, count_params
from prune_env.env import DESCRIPTOR_NAMES, PruneEnv
from prune_env.surgery.estimate import StructureEstimate
from prune_env.surgery.masking import AGREEMENT_TOLERANCE, masked_copy, random_keep


class GroupedBlock(nn.Module):
    """stem -> 1x1 (12) -> 3x3 grouped (4 groups of 3) -> depthwise x2 (12 -> 24) -> 1x1 + skip."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.reduce, self.bn1 = nn.Conv2d(8, 12, 1), nn.BatchNorm2d(12)
        self.grouped, self.bn2 = nn.Conv2d(12, 12, 3, padding=1, groups=4), nn.BatchNorm2d(12)
        self.depthwise, self.bn3 = nn.Conv2d(12, 24, 3, padding=1, groups=12), nn.BatchNorm2d(24)
        self.expand = nn.Conv2d(24, 8, 1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.bn0(self.stem(x)))
        y = torch.relu(self.bn1(self.reduce(x)))
        y = torch.relu(self.bn2(self.grouped(y)))
        y = torch.relu(self.bn3(self.depthwise(y)))
        return self.fc((x + self.expand(y)).mean((2, 3)))


class GroupedStem(nn.Module):
    """A grouped convolution on the network input: no convolution group can go."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(4, 8, 3, padding=1, groups=2)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.stem(x)).mean((2, 3)))


def _env(model, shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, *shape, generator=g)
    return PruneEnv(
        model=randomize_batchnorm(model), eval_data=(x, torch.zeros(8, dtype=torch.long)), eval_samples=8
    )


def test_a_grouped_convolution_ties_its_inputs_outputs_and_the_depthwise_that_follows():
    torch.manual_seed(0)
    env = _env(GroupedBlock(), (3, 8, 8))
    assert [(g.name, g.width, g.tied) for g in env.groups] == [("expand", 8, False), ("reduce", 4, True)]
    tied = env.groups[1]
    by_layer = {(s.module, s.side): s for s in tied.slices}
    # unit k: reduce's outputs 3k..3k+2, the grouped conv's group k (inputs and outputs), and the
    # depthwise channels that read it (two outputs per input channel)
    np.testing.assert_array_equal(by_layer[("reduce", "out")].units, np.repeat(np.arange(4), 3))
    np.testing.assert_array_equal(by_layer[("grouped", "out")].units, np.repeat(np.arange(4), 3))
    np.testing.assert_array_equal(by_layer[("depthwise", "out")].units, np.repeat(np.arange(4), 6))
    assert tied.layers == ["reduce", "grouped", "depthwise"]


def test_exports_cut_whole_groups_and_equal_the_masked_network():
    torch.manual_seed(0)
    env = _env(GroupedBlock(), (3, 8, 8))
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    rng = np.random.default_rng(0)
    for _ in range(4):
        keep = random_keep(env.groups, rng)
        pruned = env.problem.export(keep)
        kept_groups = int(keep[1].sum())
        assert pruned.grouped.groups == kept_groups and pruned.grouped.out_channels == 3 * kept_groups
        assert pruned.depthwise.groups == 3 * kept_groups and pruned.depthwise.out_channels == 6 * kept_groups
        with torch.no_grad():
            gap = float((masked_copy(env.problem.model, env.groups, keep)(x) - pruned(x)).abs().max())
        assert gap <= AGREEMENT_TOLERANCE
        params, macs = env.problem.estimate.ratios(keep)
        assert params == pytest.approx(count_params(pruned) / count_params(env.problem.model), abs=1e-12)
        # what the FLOPs budget counts (Torch-Pruning's counter: convs with biases, norms, ...)
        assert macs == pytest.approx(
            count_macs(pruned, x[:1]) / count_macs(env.problem.model, x[:1]), abs=1e-12
        )
        # and without example inputs the estimate is conv and linear MACs only, as before
        _, conv_linear = StructureEstimate(env.problem.analysis, env.problem.model).ratios(keep)
        assert conv_linear == pytest.approx(
            conv_linear_macs(pruned, x) / conv_linear_macs(env.problem.model, x), abs=1e-12
        )


def test_ratio_episodes_keep_whole_groups_by_magnitude():
    torch.manual_seed(0)
    model = GroupedBlock()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 8, 8, generator=g)
    env = PruneEnv(model=randomize_batchnorm(model), eval_data=(x, torch.zeros(8, dtype=torch.long)),
                   eval_samples=8, action_mode="ratio", budget_limit=1.0)  # fmt: skip
    env.reset(seed=0)
    env.step(np.array([1.0], dtype=np.float32))
    _, _, done, _, info = env.step(np.array([0.5], dtype=np.float32))
    assert done and len(info["masks"]["reduce"]) == 2
    # the two kept units have the largest L1 mass over reduce, grouped and depthwise rows
    mass = np.zeros(4)
    for name, per_unit in (("reduce", 3), ("grouped", 3), ("depthwise", 6)):
        rows = getattr(env.problem.model, name).weight.detach().abs().flatten(1).sum(1).double().numpy()
        mass += rows.reshape(4, per_unit).sum(1)
    assert sorted(info["masks"]["reduce"]) == sorted(np.argsort(-mass)[:2].tolist())


def test_a_grouped_convolution_on_unprunable_inputs_is_refused_by_name():
    torch.manual_seed(0)
    with pytest.raises(UnsupportedModelError, match=r"'stem' is a grouped convolution \(2 groups\)"):
        _env(GroupedStem(), (4, 8, 8))


class GroupNormNet(nn.Module):
    """conv (12) -> GroupNorm(4 groups of 3) -> conv (8) -> GroupNorm(8 groups of 1) -> fc: both
    groups are exported by the cut (Torch-Pruning 1.6 leaves num_groups as it was)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.gn1 = nn.Conv2d(3, 12, 3, padding=1), nn.GroupNorm(4, 12)
        self.conv2, self.gn2 = nn.Conv2d(12, 8, 3, padding=1), nn.GroupNorm(8, 8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.gn1(self.conv1(x)))
        return self.fc(torch.relu(self.gn2(self.conv2(x))).mean((2, 3)))


def test_a_group_norm_ties_the_channels_of_each_norm_group():
    torch.manual_seed(0)
    model = GroupNormNet()
    with torch.no_grad():
        for norm in (model.gn1, model.gn2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
    env = _env(model, (3, 8, 8))
    assert [(g.name, g.width, g.tied) for g in env.groups] == [("conv1", 4, True), ("conv2", 8, True)]
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    rng = np.random.default_rng(0)
    for _ in range(3):
        keep = random_keep(env.groups, rng)
        pruned = env.problem.export(keep)
        assert pruned.gn1.num_groups == int(keep[0].sum()) and pruned.gn1.num_channels == 3 * int(
            keep[0].sum()
        )
        assert pruned.gn2.num_groups == pruned.gn2.num_channels == int(keep[1].sum())
        with torch.no_grad():
            gap = float((masked_copy(env.problem.model, env.groups, keep)(x) - pruned(x)).abs().max())
        assert gap <= AGREEMENT_TOLERANCE
        assert env.problem.estimate.ratios(keep)[0] == pytest.approx(
            count_params(pruned) / count_params(env.problem.model), abs=1e-12
        )


def test_a_layer_norm_over_two_dimensions_in_a_group_is_refused_with_the_reason():
    model = nn.Sequential(
        nn.Linear(6, 8),
        nn.Unflatten(1, (2, 4)),
        nn.LayerNorm((2, 4)),
        nn.Flatten(),
        nn.ReLU(),
        nn.Linear(8, 3),
    )
    x = torch.randn(4, 6)
    with pytest.raises(
        UnsupportedModelError,
        match=r"'2' \(LayerNorm over \(2, 4\)\) normalizes the channels of the group of '0'",
    ):
        PruneEnv(model=model.eval(), eval_data=(x, torch.zeros(4, dtype=torch.long)), eval_samples=4)


def test_the_observation_says_a_group_is_tied():
    torch.manual_seed(0)
    env = _env(GroupedBlock(), (3, 8, 8))
    tied = DESCRIPTOR_NAMES.index("is_tied")
    obs, _ = env.reset(seed=0)
    assert obs[tied] == 0.0  # the stream group: one channel per unit
    obs, *_ = env.step(np.ones(env.max_units, dtype=np.int8))
    assert obs[tied] == 1.0 and obs[DESCRIPTOR_NAMES.index("width")] == pytest.approx(4 / 8)
