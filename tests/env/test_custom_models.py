"""User models: residual connections work exactly; unsupported topologies fail at construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ConcatFlattenNet

import prune_env
from prune_env import UnsupportedModelError
from prune_env.surgery import masking


def test_residual_user_model_groups_and_exact_export(residual_model, residual_data):
    env = prune_env.PruneEnv(model=residual_model, eval_data=residual_data, budget="params", budget_limit=0.5)
    assert env.problem.task == "custom"
    by_name = {g.name: g for g in env.groups}
    # the stem and conv2 write the same residual stream: one coupled group
    stream = next(g for g in env.groups if "conv2" in g.layers)
    assert set(stream.layers) == {"stem", "conv2"} and stream.coupled
    assert "conv1" in by_name and "out" not in by_name
    rng = np.random.default_rng(0)
    for _ in range(3):
        env.reset(seed=0)
        for g in env.groups:
            action = np.zeros(env.max_units, dtype=np.int8)
            action[: g.width] = rng.random(g.width) < 0.5
            _, reward, done, _, info = env.step(action)
        pruned = env.export()
        masked = env.problem._masked
        x = residual_data[0][:16]
        with torch.no_grad():
            assert torch.allclose(pruned(x), masked(x), atol=1e-5)
        assert (
            stream.width
            > pruned.stem.out_channels
            == pruned.conv2.out_channels
            == info["widths"][stream.name]
        )
        expected = sum(p.numel() for p in pruned.parameters()) / sum(
            p.numel() for p in residual_model.parameters()
        )
        assert info["cost"] == pytest.approx(expected)
        with torch.no_grad():
            acc = float((pruned(residual_data[0]).argmax(1) == residual_data[1]).float().mean())
        assert reward == pytest.approx(acc)


def test_export_with_explicit_masks(residual_model, residual_data):
    env = prune_env.PruneEnv(model=residual_model, eval_data=residual_data)
    masks = {g.name: [0, 2] for g in env.groups}
    pruned = env.problem.export(masks)
    assert pruned.conv1.out_channels == 2 and pruned.stem.out_channels == 2
    with pytest.raises(ValueError, match="unknown group"):
        env.problem.export({"nope": [0]})
    with pytest.raises(ValueError, match=r"must be in \[0"):
        env.problem.export({env.groups[0].name: [99]})
    with pytest.raises(ValueError, match="at least one unit"):
        env.problem.export({env.groups[0].name: []})


def test_concat_flatten_linear_is_rejected_naming_the_layers():
    torch.manual_seed(0)
    model = ConcatFlattenNet().eval()
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    with pytest.raises(UnsupportedModelError, match="'a'|'b'"):
        prune_env.PruneEnv(model=model, eval_data=(x, y))


def test_dataloader_eval_data_and_finetune_needs_train_data(residual_model, residual_data):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*residual_data), batch_size=10)
    env = prune_env.PruneEnv(model=residual_model, eval_data=loader, eval_samples=25)
    assert env.problem.eval_labels.shape == (25,)
    with pytest.raises(ValueError, match="train_data"):
        env.finetune_steps = 5
    env = prune_env.PruneEnv(model=residual_model, eval_data=loader, train_data=loader, finetune_steps=2)
    env.reset(seed=0)
    for _ in range(env.num_groups):
        *_, info = env.step(np.ones(env.max_units, dtype=np.int8))
    assert 0.0 <= info["accuracy"] <= 1.0


def test_custom_model_needs_eval_data(residual_model):
    with pytest.raises(ValueError, match="eval_data"):
        prune_env.PruneEnv(model=residual_model)


def test_model_without_prunable_layers_is_rejected():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with pytest.raises(UnsupportedModelError, match="no prunable group"):
        prune_env.PruneEnv(model=model, eval_data=(torch.randn(4, 4), torch.zeros(4, dtype=torch.long)))


class NormedMLP(torch.nn.Module):
    """A LayerNorm without affine weight on the first hidden layer (its group cannot be masked
    exactly: prune-env masks a LayerNorm by its weight), a plain second one."""

    def __init__(self):
        super().__init__()
        self.fc1, self.norm = torch.nn.Linear(6, 8), torch.nn.LayerNorm(8, elementwise_affine=False)
        self.fc2, self.out = torch.nn.Linear(8, 16), torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.out(torch.relu(self.fc2(torch.relu(self.norm(self.fc1(x))))))


def test_a_group_that_cannot_be_pruned_exactly_stays_whole_with_its_reason():
    torch.manual_seed(0)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    with pytest.warns(UserWarning, match=r"1 group\(s\) cannot be pruned exactly and stay whole .*: fc1"):
        env = prune_env.PruneEnv(
            model=NormedMLP().eval(), eval_data=(x, y), eval_samples=16, budget_limit=1.0
        )
    assert env.problem.group_names == ["fc2"]
    assert (
        "'norm' (LayerNorm over (8,), no affine weight) normalizes the channels of the group of 'fc1'"
        in env.skipped_groups["fc1"]
    )
    env.reset(seed=0)
    keep = np.zeros(env.max_units, dtype=np.int8)
    keep[:5] = 1
    *_, info = env.step(keep)
    pruned = env.export()
    assert pruned.fc1.out_features == 8 and pruned.norm.normalized_shape == (8,)  # left whole
    assert pruned.fc2.out_features == 5 and pruned.out.in_features == 5 and info["widths"] == {"fc2": 5}
    dense = sum(p.numel() for p in env.problem.model.parameters())
    assert info["params_ratio"] == pytest.approx(
        (dense - 11 * (8 + 1) - 11 * 3) / dense
    )  # fc2 rows + biases, out columns
    with pytest.raises(UnsupportedModelError, match="'norm' \\(LayerNorm over"):
        prune_env.PruneEnv(model=NormedMLP().eval(), eval_data=(x, y), strict=True)


def channel_shuffle(x, groups):
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


class ShuffleBlockNet(torch.nn.Module):
    """ShuffleNetV2's unit: split, a branch, concat, channel shuffle."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn0 = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8)
        self.inner, self.bn1 = torch.nn.Conv2d(4, 6, 1), torch.nn.BatchNorm2d(6)
        self.outer, self.bn2 = torch.nn.Conv2d(6, 4, 3, padding=1), torch.nn.BatchNorm2d(4)
        self.head = torch.nn.Conv2d(8, 12, 1)
        self.fc = torch.nn.Linear(12, 5)

    def forward(self, x):
        x = torch.relu(self.bn0(self.stem(x)))
        a, b = x.chunk(2, dim=1)
        b = torch.relu(self.bn2(self.outer(torch.relu(self.bn1(self.inner(b))))))
        x = channel_shuffle(torch.cat([a, b], 1), 2)
        return self.fc(torch.relu(self.head(x)).mean((2, 3)))


def test_a_channel_shuffle_leaves_the_groups_through_it_whole_and_prunes_the_rest():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 8, 8), torch.zeros(8, dtype=torch.long)
    with pytest.warns(UserWarning, match="outer"):
        env = prune_env.PruneEnv(model=ShuffleBlockNet().eval(), eval_data=(x, y), eval_samples=8)
    assert env.problem.group_names == ["inner", "head"]  # inside the branch, and after the shuffle
    assert "disagrees with the masked one" in env.skipped_groups["outer"]  # the stream across the shuffle
    rng = np.random.default_rng(0)
    for _ in range(3):
        keep = masking.random_keep(env.groups, rng)
        with torch.no_grad():
            gap = float(
                (masking.masked_copy(env.problem.model, env.groups, keep)(x) - env.problem.export(keep)(x))
                .abs()
                .max()
            )
        assert gap <= masking.AGREEMENT_TOLERANCE
