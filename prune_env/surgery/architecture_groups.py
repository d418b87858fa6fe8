"""Groups prune-env builds from the architecture, where Torch-Pruning's trace cannot follow
the channels: attention heads (packed projections, per-head bias tables), and the residual
streams of torchvision's Swin Transformer (its attention projections are used as functions,
its patch merging concatenates four shifted views, and the trace's index mapping grows past
its bound at 224x224). Like every group, these are proven at construction: the probe prunes a
copy for real and compares it with the masked network.
"""

from __future__ import annotations

import numpy as np
from torch import nn
from torchvision.models.maxvit import RelativePositionalMultiHeadAttention
from torchvision.models.shufflenetv2 import ShuffleNetV2
from torchvision.models.swin_transformer import (
    PatchMerging,
    PatchMergingV2,
    ShiftedWindowAttention,
    ShiftedWindowAttentionV2,
    SwinTransformer,
)

from prune_env.surgery.units import PrunableGroup, UnitSlice

# layers whose heads are units (:func:`head_groups`); Swin V2's attention subclasses V1's
ATTENTION_TYPES = (nn.MultiheadAttention, ShiftedWindowAttention, RelativePositionalMultiHeadAttention)


def head_groups(modules: dict[str, nn.Module]) -> tuple[list[PrunableGroup], dict[str, str]]:
    """One group per attention layer with at least two heads, its heads the units; and the
    layers left whole (name -> reason). A head of an ``nn.MultiheadAttention`` is its query, key
    and value rows of the packed input projection with its columns of the output projection; a
    head of torchvision's Swin window attention the same rows of ``qkv`` and columns of
    ``proj``, with its column of the relative position bias table (V1) or its row of the bias
    MLP's last layer and its logit scale (V2); of MaxViT's attention, its rows of ``to_qkv``,
    columns of ``merge`` and bias table column. :mod:`prune_env.surgery.pruned_attention` exports them."""
    groups, refused = [], {}
    for name, module in modules.items():
        if (
            not isinstance(module, ATTENTION_TYPES)
            or getattr(module, "num_heads", getattr(module, "n_heads", 1)) < 2
        ):
            continue
        reason = unsupported_attention(module)
        if reason:
            refused[name] = f"layer {name!r} ({type(module).__name__}) {reason}, so its heads stay whole"
            continue
        if isinstance(module, nn.MultiheadAttention):
            heads, inner, rows_of, columns_of, per_head = (
                module.num_heads,
                module.embed_dim,
                name,
                f"{name}.out_proj",
                [],
            )
        elif isinstance(module, RelativePositionalMultiHeadAttention):
            heads, inner = module.n_heads, module.n_heads * module.head_dim
            rows_of, columns_of, every = f"{name}.to_qkv", f"{name}.merge", np.arange(module.n_heads)
            per_head = [UnitSlice(f"{name}.relative_position_bias_table", "out", every, every, dim=1)]
        else:
            heads = module.num_heads
            inner, rows_of, columns_of = module.qkv.out_features // 3, f"{name}.qkv", f"{name}.proj"
            every = np.arange(heads)
            if isinstance(module, ShiftedWindowAttentionV2):
                per_head = [UnitSlice(f"{name}.cpb_mlp.2", "out", every, every),
                            UnitSlice(f"{name}.logit_scale", "out", every, every, dim=0)]  # fmt: skip
            else:
                per_head = [UnitSlice(f"{name}.relative_position_bias_table", "out", every, every, dim=1)]
        within = np.arange(inner)  # position h * size + j belongs to head h
        units = within // (inner // heads)
        rows = np.concatenate([within, within + inner, within + 2 * inner])  # query, key, value
        slices = [
            UnitSlice(rows_of, "out", rows, np.tile(units, 3)),
            UnitSlice(columns_of, "in", within, units),
            *per_head,
        ]
        groups.append(
            PrunableGroup(index=-1, name=name, kind="heads", width=heads, in_width=inner, kernel_size=1,
                          stride=1, layers=[name], slices=slices, tied=True)
        )  # fmt: skip
    return groups, refused


def unsupported_attention(attention: nn.Module) -> str | None:
    if isinstance(attention, nn.MultiheadAttention):
        if not attention._qkv_same_embed_dim:
            return "projects keys and values from other widths (kdim / vdim)"
        if attention.bias_k is not None:
            return "adds learned key and value biases (add_bias_kv)"
        return None
    if isinstance(attention, ShiftedWindowAttentionV2) and not (
        isinstance(attention.cpb_mlp[-1], nn.Linear)
        and attention.cpb_mlp[-1].out_features == attention.num_heads
    ):
        return "computes its position bias otherwise than torchvision's bias MLP"
    return None


def swin_stream_groups(model: nn.Module) -> list[PrunableGroup]:
    """The residual stream of each stage of a torchvision ``SwinTransformer`` (V1 or V2), one
    group whose units are the stream's channels: what writes it (the patch embedding and its
    LayerNorm, or the patch merging that opens the stage; each block's attention output
    projection and MLP output), what normalizes it (each block's two LayerNorms), what reads it
    (the attention's qkv and the MLP's first layer), and the layers after the stage (the next
    patch merging, which reads each channel at four positions of its concatenation, or the final
    LayerNorm and the classifier). Empty for any other model."""
    if not isinstance(model, SwinTransformer):
        return []
    names = {m: n for n, m in model.named_modules()}
    groups, opening = [], None  # opening: (slices, writer) of the layers that open the stage
    for part in model.features:
        if isinstance(part, nn.Sequential) and isinstance(part[0], nn.Conv2d):  # the patch embedding
            conv, norm = part[0], part[-1]
            opening = (
                [
                    _whole(names[conv], "out", conv.out_channels),
                    _whole(names[norm], "out", conv.out_channels),
                ],
                conv,
            )
        elif isinstance(part, (PatchMerging, PatchMergingV2)):
            width = part.reduction.in_features // 4  # the closing stream's width
            four = np.concatenate([np.arange(width) + k * width for k in range(4)])
            closing = [UnitSlice(names[part.reduction], "in", four, np.tile(np.arange(width), 4))]
            if isinstance(part, PatchMerging):  # V1 normalizes the concatenation, V2 the reduction
                closing.append(UnitSlice(names[part.norm], "out", four, np.tile(np.arange(width), 4)))
            groups[-1].slices.extend(closing)
            width = part.reduction.out_features
            opening = [_whole(names[part.reduction], "out", width)], part.reduction
            if isinstance(part, PatchMergingV2):
                opening[0].append(_whole(names[part.norm], "out", width))
        else:  # a stage: its blocks
            slices, writer = opening
            width = writer.out_channels if isinstance(writer, nn.Conv2d) else writer.out_features
            layers = [names[writer]]
            for block in part:
                prefix = names[block]
                slices += [_whole(f"{prefix}.{n}", side, width) for n, side in _BLOCK_SLICES]
                layers += [f"{prefix}.attn", f"{prefix}.mlp.3"]
            is_conv = isinstance(writer, nn.Conv2d)
            groups.append(
                PrunableGroup(index=-1, name=names[writer], kind="conv" if is_conv else "linear", width=width,
                              in_width=writer.in_channels if is_conv else writer.in_features,
                              kernel_size=int(np.prod(writer.kernel_size)) if is_conv else 1,
                              stride=int(np.prod(writer.stride)) if is_conv else 1, layers=layers, slices=slices)
            )  # fmt: skip
    width = model.head.in_features
    groups[-1].slices += [_whole("norm", "out", width), _whole("head", "in", width)]
    return groups


# the slices of one Swin block on its stage's stream (V1 and V2 alike)
_BLOCK_SLICES = (
    ("norm1", "out"), ("attn.qkv", "in"), ("attn.proj", "out"),
    ("norm2", "out"), ("mlp.0", "in"), ("mlp.3", "out"),
)  # fmt: skip


def _whole(module: str, side: str, width: int) -> UnitSlice:
    return UnitSlice(module, side, np.arange(width), np.arange(width))


def shufflenet_stream_groups(model: nn.Module) -> tuple[list[PrunableGroup], dict[str, str]]:
    """The stream of each stage of a torchvision ``ShuffleNetV2``, one group per stage, with
    the ties that keep a pruned stream exact. Each block interleaves two halves (``cat`` then
    ``channel_shuffle``: output 2j is the first half's j, output 2j + 1 the second half's j), and
    a unit block splits its input into equal halves (``chunk(2)``), so: input channels j and
    j + C/2 of a unit block go together (the halves stay equal), the first half's channel j goes
    with the branch's output j (the interleave stays in order), and the opening block's two
    branches' outputs j go together. A unit is a class of this tie (`tied`); deep stages tie
    their whole stream into one unit: no group then, and the layers writing it map to that reason in
    the second value. Empty for any other model."""
    if not isinstance(model, ShuffleNetV2):
        return [], {}
    names = {m: n for n, m in model.named_modules()}
    stages = [model.stage2, model.stage3, model.stage4]
    readers = [stage[0] for stage in stages[1:]] + [model.conv5]
    groups, whole = [], {}
    for stage, reader in zip(stages, readers):
        group = _shuffle_stage(stage, reader, names)
        if group.width > 1:
            groups.append(group)
            continue
        reason = (
            f"ShuffleNetV2's stream of {names[stage]!r} ties all its channels into one unit: each of its "
            f"{len(stage) - 1} unit blocks splits the stream into equal halves and interleaves them with its "
            "branch, so keeping a pruned stream exact couples every channel with every other"
        )
        whole.update({s.module: reason for s in group.slices if s.side == "out"})
    return groups, whole


def _shuffle_stage(stage: nn.Sequential, reader: nn.Module, names: dict) -> PrunableGroup:
    ties, slices = UnionFind(), []
    opening, half = stage[0], stage[0].branch2[5].out_channels
    for j in range(half):  # the opening block: both branches' outputs j, then positions 2j, 2j + 1
        ties.union(("b1", j), ("b2", 0, j))
        ties.union(("in", 1, 2 * j), ("b1", j))
        ties.union(("in", 1, 2 * j + 1), ("b2", 0, j))
    for k in range(1, len(stage)):
        for j in range(half):
            ties.union(("in", k, j), ("in", k, j + half))  # equal halves
            ties.union(("in", k, j), ("b2", k, j))  # the interleave in order
            ties.union(("in", k + 1, 2 * j), ("in", k, j))
            ties.union(("in", k + 1, 2 * j + 1), ("b2", k, j))
    ids: dict = {}

    def unit(node):
        return ids.setdefault(ties.find(node), len(ids))

    every = np.arange(half)
    for branch, node in ((opening.branch1, lambda j: ("b1", j)), (opening.branch2, lambda j: ("b2", 0, j))):
        units = np.array([unit(node(j)) for j in every])
        slices += [
            UnitSlice(names[branch[i]], "out", every, units)
            for i in ((2, 3) if branch is opening.branch1 else (5, 6))
        ]
    for k in range(1, len(stage)):
        block = stage[k]
        produced = np.array([unit(("b2", k, j)) for j in every])
        slices += [UnitSlice(names[block.branch2[i]], "out", every, produced) for i in (5, 6)]
        read = np.array([unit(("in", k, j + half)) for j in every])  # the second half feeds the branch
        slices.append(UnitSlice(names[block.branch2[0]], "in", every, read))
    width = 2 * half
    out = np.arange(width)
    final = np.array([unit(("in", len(stage), p)) for p in out])
    if isinstance(reader, nn.Sequential):  # conv5: its 1x1 convolution reads the stream
        slices.append(UnitSlice(names[reader[0]], "in", out, final))
    else:  # the next stage's opening block: its depthwise branch (with BatchNorm) and both 1x1 inputs
        slices += [UnitSlice(names[reader.branch1[i]], "out", out, final) for i in (0, 1)]
        slices += [
            UnitSlice(names[reader.branch1[2]], "in", out, final),
            UnitSlice(names[reader.branch2[0]], "in", out, final),
        ]
    root = opening.branch1[2]
    writers = [names[opening.branch1[2]], names[opening.branch2[5]]] + [
        names[b.branch2[5]] for b in stage[1:]
    ]
    return PrunableGroup(index=-1, name=names[root], kind="conv", width=len(ids), in_width=root.in_channels,
                         kernel_size=1, stride=1, layers=writers, slices=slices, tied=True)  # fmt: skip


class UnionFind:
    """Disjoint sets of hashable nodes (ties between units), with path halving."""

    def __init__(self):
        self.parent: dict = {}

    def find(self, node):
        self.parent.setdefault(node, node)
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, a, b) -> None:
        self.parent[self.find(a)] = self.find(b)
