"""LayerNorm inside groups (statistics over the kept channels), bare parameters in groups
(layer scales, class tokens) and attention heads as units: every export equals the masked
network, and the parameter estimate stays exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.swin_transformer import ShiftedWindowAttention, ShiftedWindowAttentionV2

from prune_env.budgets import count_params
from prune_env.env import DESCRIPTOR_NAMES, PruneEnv
from prune_env.surgery import masked_norms
from prune_env.surgery.dependency_groups import analyze
from prune_env.surgery.masking import AGREEMENT_TOLERANCE, masked_copy, output_gap, random_keep
from prune_env.surgery.pruned_attention import PrunedMultiheadAttention, PrunedWindowAttention, cut_attention


class ChannelsFirstLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (ConvNeXt's LayerNorm2d)."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class TinyConvNeXt(nn.Module):
    """stem + LayerNorm2d -> one ConvNeXt block (depthwise 3x3, LayerNorm, MLP 8 -> 16 -> 8,
    layer scale, residual add) -> LayerNorm2d -> classifier."""

    def __init__(self):
        super().__init__()
        self.stem, self.stem_norm = nn.Conv2d(3, 8, 2, stride=2), ChannelsFirstLayerNorm(8)
        self.dwconv, self.norm = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.LayerNorm(8)
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 8)
        self.layer_scale = nn.Parameter(torch.rand(8, 1, 1) + 0.5)
        self.head_norm, self.head = ChannelsFirstLayerNorm(8), nn.Linear(8, 5)

    def forward(self, x):
        x = self.stem_norm(self.stem(x))
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1))
        y = self.fc2(F.gelu(self.fc1(y))).permute(0, 3, 1, 2)
        x = x + self.layer_scale * y
        return self.head(self.head_norm(x).mean((2, 3)))


class TinyViT(nn.Module):
    """patch embedding, class token and position embedding, one encoder block with 4 heads of
    size 4, classifier on the class token."""

    def __init__(self, batch_first: bool = True):
        super().__init__()
        self.batch_first = batch_first
        self.patch = nn.Conv2d(3, 16, 4, stride=4)
        self.class_token = nn.Parameter(torch.randn(1, 1, 16))
        self.position = nn.Parameter(torch.randn(1, 5, 16))
        self.ln_1, self.attention = nn.LayerNorm(16), nn.MultiheadAttention(16, 4, batch_first=batch_first)
        self.ln_2, self.mlp = nn.LayerNorm(16), nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], 1) + self.position
        y = self.ln_1(x)
        if not self.batch_first:
            y = y.transpose(0, 1)
        y, _ = self.attention(y, y, y, need_weights=False)
        x = x + (y if self.batch_first else y.transpose(0, 1))
        x = x + self.mlp(self.ln_2(x))
        return self.head(x[:, 0])


class TinySwin(nn.Module):
    """patches -> two torchvision window attention blocks (3 heads of size 4, 2x2 windows, the
    second shifted) with residual adds -> classifier."""

    def __init__(self, attention=ShiftedWindowAttention):
        super().__init__()
        self.patch = nn.Conv2d(3, 12, 2, stride=2)
        self.attn1 = attention(12, [2, 2], [0, 0], 3)
        self.attn2 = attention(12, [2, 2], [1, 1], 3)
        self.head = nn.Linear(12, 5)

    def forward(self, x):
        x = self.patch(x).permute(0, 2, 3, 1)  # NHWC, 3x3 windows of positions: padded to 4x4
        x = x + self.attn1(x)
        x = x + self.attn2(x)
        return self.head(x.mean((1, 2)))


def _randomized(model: nn.Module) -> nn.Module:
    """Norm weights and biases away from 1 and 0, so a wrong channel shows in the output."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
    return model.eval()


def _env(model, size: int = 8, **kwargs):
    x = torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(0))
    return PruneEnv(model=model, eval_data=(x, torch.zeros(8, dtype=torch.long)), eval_samples=8, **kwargs)


def test_masked_layer_norm_normalizes_over_the_kept_channels_only():
    torch.manual_seed(0)
    norm = _randomized(nn.Sequential(nn.LayerNorm(6)))[0]
    x = torch.randn(3, 4, 6)
    kept = torch.tensor([True, False, True, True, False, True])
    masked_norms.drop_channels(norm, np.flatnonzero(~kept.numpy()))
    with masked_norms.kept_channel_statistics(norm):
        got = norm(x)
    expected = torch.zeros_like(x)
    expected[..., kept] = F.layer_norm(x[..., kept], (4,), norm.weight[kept], norm.bias[kept], norm.eps)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(norm(x), F.layer_norm(x, (6,), norm.weight, norm.bias))  # outside: dense
    masked_norms.reset(norm)
    with masked_norms.kept_channel_statistics(norm):
        torch.testing.assert_close(norm(x), F.layer_norm(x, (6,), norm.weight, norm.bias))


def test_a_layer_norm_stream_is_one_group_with_its_layer_scale():
    torch.manual_seed(0)
    analysis = analyze(_randomized(TinyConvNeXt()), torch.randn(1, 3, 8, 8))
    assert analysis.skipped == {}
    stream, hidden = analysis.groups
    assert (stream.width, stream.layers, hidden.name, hidden.width) == (
        8,
        ["stem", "dwconv", "fc2"],
        "fc1",
        16,
    )
    sliced = {(s.module, s.side, s.dim) for s in stream.slices}
    assert {("stem_norm", "out", None), ("norm", "out", None), ("head_norm", "out", None)} <= sliced
    assert ("layer_scale", "out", 0) in sliced and ("fc2", "out", None) in sliced
    assert ("head", "in", None) in sliced


def test_layer_norm_streams_export_exactly_and_zeroing_alone_would_not():
    torch.manual_seed(0)
    env = _env(_randomized(TinyConvNeXt()), action_mode="ratio")
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    rng = np.random.default_rng(0)
    for _ in range(4):
        keep = random_keep(env.groups, rng)
        pruned = env.problem.export(keep)
        masked = masked_copy(env.problem.model, env.groups, keep)
        assert output_gap(masked, pruned, x) <= AGREEMENT_TOLERANCE
        assert pruned.stem_norm.normalized_shape == (int(keep[0].sum()),)
        assert pruned.layer_scale.shape == (int(keep[0].sum()), 1, 1)
        assert count_params(pruned) == round(
            env.problem.estimate.ratios(keep)[0] * count_params(env.problem.model)
        )
    # the same masks without the kept-channel statistics: zeroed channels still count in the
    # LayerNorm's mean and variance, and the outputs differ
    zeroed_only = masked_copy(env.problem.model, env.groups, keep)
    for m in zeroed_only.modules():
        if isinstance(m, nn.LayerNorm):
            masked_norms.reset(m)
    assert output_gap(zeroed_only, pruned, x) > 1e-3


@pytest.mark.parametrize("batch_first", [True, False])
def test_attention_heads_and_the_stream_around_them_export_exactly(batch_first):
    torch.manual_seed(0)
    env = _env(_randomized(TinyViT(batch_first)))
    assert env.skipped_groups == {}
    stream, heads, hidden = env.groups
    assert (heads.name, heads.kind, heads.width, heads.tied) == ("attention", "heads", 4, True)
    assert (hidden.name, stream.width, stream.layers) == ("mlp.0", 16, ["patch", "attention", "mlp.2"])
    sliced = {(s.module, s.side, s.dim) for s in stream.slices}
    assert {("class_token", "out", 2), ("position", "out", 2), ("attention", "in", None)} <= sliced
    assert {("attention.out_proj", "out", None), ("ln_1", "out", None), ("head", "in", None)} <= sliced
    row = env._descriptors[env.problem.task][heads.index]
    assert row[DESCRIPTOR_NAMES.index("is_conv")] == row[DESCRIPTOR_NAMES.index("is_linear")] == 0
    assert row[DESCRIPTOR_NAMES.index("is_tied")] == 1
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    rng = np.random.default_rng(0)
    for keep_heads in ([True, False, True, False], [False, False, False, True], [True, True, True, False]):
        keep = random_keep(env.groups, rng)
        keep[heads.index] = np.array(keep_heads)
        pruned = env.problem.export(keep)
        assert isinstance(pruned.attention, PrunedMultiheadAttention)
        assert pruned.attention.num_heads == sum(keep_heads)
        assert pruned.class_token.shape == (1, 1, int(keep[stream.index].sum()))
        assert output_gap(masked_copy(env.problem.model, env.groups, keep), pruned, x) <= AGREEMENT_TOLERANCE
        assert count_params(pruned) == round(
            env.problem.estimate.ratios(keep)[0] * count_params(env.problem.model)
        )


def test_the_pruned_attention_equals_torch_attention_when_every_head_is_kept():
    torch.manual_seed(0)
    dense = nn.MultiheadAttention(12, 3, batch_first=True).eval()
    whole = cut_attention(dense, torch.arange(36), None)
    assert isinstance(whole, PrunedMultiheadAttention) and cut_attention(dense, None, None) is dense
    q, kv = torch.randn(2, 5, 12), torch.randn(2, 7, 12)
    mask = torch.rand(5, 7) > 0.7
    mask[:, 0] = False
    padding = torch.zeros(2, 7, dtype=torch.bool)
    padding[1, -2:] = True
    with torch.no_grad():
        for kwargs in ({}, {"attn_mask": mask}, {"key_padding_mask": padding}):
            expected, expected_weights = dense(q, kv, kv, **kwargs)
            got, weights = whole(q, kv, kv, **kwargs)
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(weights, expected_weights, atol=1e-5, rtol=1e-5)


def test_cutting_part_of_a_head_is_refused():
    from prune_env.errors import PruningMismatchError

    dense = nn.MultiheadAttention(8, 2)
    rows = torch.tensor([i for i in range(24) if i not in (0, 8, 16)])  # one unit of head 0
    with pytest.raises(PruningMismatchError, match="part of a head"):
        cut_attention(dense, rows, None)


@pytest.mark.parametrize("model", [TinyViT, TinyConvNeXt])
def test_pruned_transformers_export_to_onnx_with_parity(model):
    pytest.importorskip("onnxruntime")
    from prune_env.deploy import onnx_runtime

    torch.manual_seed(0)
    env = _env(_randomized(model()))
    pruned = env.problem.export(random_keep(env.groups, np.random.default_rng(0)))
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    session = onnx_runtime.ort_session(onnx_runtime.onnx_bytes(pruned, x))
    assert onnx_runtime.parity(pruned, session, x)["matches"]


@pytest.mark.parametrize("attention", [ShiftedWindowAttention, ShiftedWindowAttentionV2])
def test_swin_window_attention_heads_are_units_and_export_exactly(attention):
    torch.manual_seed(0)
    model = TinySwin(attention)
    with torch.no_grad():
        for block in (model.attn1, model.attn2):
            block.qkv.bias.normal_()
    env = _env(model.eval(), size=6)
    heads = [g for g in env.groups if g.kind == "heads"]
    assert [(g.name, g.width, g.tied) for g in heads] == [("attn1", 3, True), ("attn2", 3, True)]
    per_head = {(s.module, s.dim) for s in heads[1].slices if s.module not in ("attn2.qkv", "attn2.proj")}
    if attention is ShiftedWindowAttentionV2:
        assert per_head == {("attn2.cpb_mlp.2", None), ("attn2.logit_scale", 0)}
    else:
        assert per_head == {("attn2.relative_position_bias_table", 1)}
    x = torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(3))
    for kept in ([True, False, True], [False, True, False], [False, False, True]):
        keep = [np.ones(g.width, dtype=bool) for g in env.groups]
        keep[heads[0].index], keep[heads[1].index] = np.array(kept), np.array(kept[::-1])
        pruned = env.problem.export(keep)
        assert isinstance(pruned.attn1, PrunedWindowAttention) and pruned.attn1.num_heads == sum(kept)
        assert output_gap(masked_copy(env.problem.model, env.groups, keep), pruned, x) <= AGREEMENT_TOLERANCE
        assert count_params(pruned) == round(
            env.problem.estimate.ratios(keep)[0] * count_params(env.problem.model)
        )


@pytest.mark.parametrize("attention", [ShiftedWindowAttention, ShiftedWindowAttentionV2])
@pytest.mark.parametrize("shift", [[0, 0], [3, 3]])
def test_the_pruned_window_attention_equals_torchvision_when_every_head_is_kept(attention, shift):
    torch.manual_seed(0)
    dense = attention(24, [7, 7], shift, 3).eval()
    with torch.no_grad():
        dense.qkv.bias.normal_()
    whole = PrunedWindowAttention(dense).eval()
    for height, width in ((14, 14), (9, 11), (5, 5)):  # shifted, padded, window larger than the map
        x = torch.randn(2, height, width, 24)
        with torch.no_grad():
            torch.testing.assert_close(whole(x), dense(x), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("version", [1, 2])
def test_swin_streams_are_built_from_the_architecture_and_export_exactly(version):
    from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformer, SwinTransformerBlockV2

    torch.manual_seed(0)
    v2 = {"block": SwinTransformerBlockV2, "downsample_layer": PatchMergingV2} if version == 2 else {}
    model = SwinTransformer([2, 2], 8, [1, 1], [2, 2], [2, 2], num_classes=3, **v2).eval()
    env = _env(_randomized(model))
    assert env.skipped_groups == {}
    streams = [g for g in env.groups if g.name in ("features.0.0", "features.2.reduction")]
    assert [(g.name, g.width) for g in streams] == [("features.0.0", 8), ("features.2.reduction", 16)]
    merging = {(s.module, s.side): s for s in streams[0].slices if s.module.startswith("features.2")}
    # patch merging reads each stream channel at four positions of its concatenation
    np.testing.assert_array_equal(merging[("features.2.reduction", "in")].units, np.tile(np.arange(8), 4))
    assert (("features.2.norm", "out") in merging) == (version == 1)
    assert sorted(g.kind for g in env.groups) == ["conv", "heads", "heads", "linear", "linear", "linear"]
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    rng = np.random.default_rng(0)
    for _ in range(4):
        keep = random_keep(env.groups, rng)
        pruned = env.problem.export(keep)
        assert pruned.head.in_features == int(keep[streams[1].index].sum())
        assert output_gap(masked_copy(env.problem.model, env.groups, keep), pruned, x) <= AGREEMENT_TOLERANCE
        assert count_params(pruned) == round(
            env.problem.estimate.ratios(keep)[0] * count_params(env.problem.model)
        )


def test_shufflenet_streams_tie_across_the_shuffle_and_export_exactly():
    from torchvision.models import ShuffleNetV2

    torch.manual_seed(0)
    # stage2 and stage4 have one and two unit blocks: their streams keep several units; stage3's
    # seven unit blocks tie its whole stream into one unit, which stays whole with the reason
    model = ShuffleNetV2([2, 8, 3], [8, 16, 32, 64, 32], num_classes=3).eval()
    env = _env(model, size=32)
    streams = {g.name: g for g in env.groups if g.tied}
    assert {name: g.width for name, g in streams.items()} == {
        "stage2.0.branch1.2": 4,
        "stage4.0.branch1.2": 8,
    }
    assert set(env.skipped_groups) >= {"stage3.0.branch1.2", "stage3.7.branch2.5", "stage4.0.branch1.0"}
    assert all("ties all its channels into one unit" in why for why in env.skipped_groups.values())
    stage2 = {(s.module, s.side): s for s in streams["stage2.0.branch1.2"].slices}
    # the opening block's branches interleave: output j of each branch is one unit with the other's
    np.testing.assert_array_equal(
        stage2[("stage2.0.branch1.2", "out")].units, stage2[("stage2.0.branch2.5", "out")].units
    )
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    rng = np.random.default_rng(0)
    for _ in range(4):
        keep = random_keep(env.groups, rng)
        pruned = env.problem.export(keep)
        assert output_gap(masked_copy(env.problem.model, env.groups, keep), pruned, x) <= AGREEMENT_TOLERANCE
        assert count_params(pruned) == round(
            env.problem.estimate.ratios(keep)[0] * count_params(env.problem.model)
        )


class TinyMaxViTAttention(nn.Module):
    """patches -> torchvision's MaxViT relative attention over 2x2 partitions (2 heads of size 4)
    with a residual add -> classifier."""

    def __init__(self):
        super().__init__()
        from torchvision.models.maxvit import RelativePositionalMultiHeadAttention

        self.patch = nn.Conv2d(3, 8, 2, stride=2)
        self.attn = RelativePositionalMultiHeadAttention(8, 4, 4)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.patch(x)  # (B, 8, 4, 4) -> (B, 4 partitions, 4 positions, 8)
        b = x.shape[0]
        parts = x.view(b, 8, 2, 2, 2, 2).permute(0, 2, 4, 3, 5, 1).reshape(b, 4, 4, 8)
        return self.head((parts + self.attn(parts)).mean((1, 2)))


def test_maxvit_attention_heads_are_units_and_export_exactly():
    from prune_env.surgery.pruned_attention import PrunedRelativeAttention

    torch.manual_seed(0)
    env = _env(TinyMaxViTAttention().eval())
    (heads,) = [g for g in env.groups if g.kind == "heads"]
    assert (heads.name, heads.width) == ("attn", 2)
    assert {(s.module, s.side, s.dim) for s in heads.slices} == {
        ("attn.to_qkv", "out", None), ("attn.merge", "in", None), ("attn.relative_position_bias_table", "out", 1)
    }  # fmt: skip
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        parts = torch.randn(2, 4, 4, 8)
        torch.testing.assert_close(
            PrunedRelativeAttention(env.problem.model.attn)(parts), env.problem.model.attn(parts)
        )
    for kept in ([True, False], [False, True]):
        keep = [np.ones(g.width, dtype=bool) for g in env.groups]
        keep[heads.index] = np.array(kept)
        pruned = env.problem.export(keep)
        assert isinstance(pruned.attn, PrunedRelativeAttention) and pruned.attn.n_heads == 1
        assert output_gap(masked_copy(env.problem.model, env.groups, keep), pruned, x) <= AGREEMENT_TOLERANCE
        assert count_params(pruned) == round(
            env.problem.estimate.ratios(keep)[0] * count_params(env.problem.model)
        )
