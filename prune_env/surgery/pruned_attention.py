"""Attention heads as units: the groups of ``nn.MultiheadAttention`` and their export.

A head owns rows of the packed input projection (its query, key and value slices) and columns
of the output projection; a residual stream around the attention owns the input projection's
columns and the output projection's rows. Masking a head zeroes those: its queries and keys are zero, so its
attention is uniform over values that are also zero, and it adds nothing to the output -
exactly what the attention without that head computes. ``nn.MultiheadAttention`` itself cannot
hold fewer heads than ``embed_dim / head_dim``, nor a different input width, so the export
replaces a pruned one with :class:`PrunedMultiheadAttention`, which keeps the heads' size and scale.
torchvision's Swin window attention (V1 and V2) is handled the same way, its per-head bias
table (or bias MLP rows) and logit scale cut with the heads (:class:`PrunedWindowAttention`).
Torch-Pruning does not know these units: :func:`prune_env.surgery.architecture_groups.head_groups` makes the groups
(``tied``: exported by prune-env's own cut only, and proven like every group).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.maxvit import RelativePositionalMultiHeadAttention
from torchvision.models.swin_transformer import ShiftedWindowAttention

from prune_env.errors import PruningMismatchError


def cut_attention(
    attention: nn.MultiheadAttention, kept_rows: torch.Tensor | None, kept_columns: torch.Tensor | None
) -> nn.Module:
    """The attention with only the heads whose projection rows are kept and only the kept input
    channels (a residual stream cut around it); the output projection is cut with the rest of
    the plan. The layer itself when nothing is cut."""
    if kept_rows is None and kept_columns is None:
        return attention
    embed, size = attention.embed_dim, attention.head_dim
    rows = torch.arange(3 * embed) if kept_rows is None else kept_rows.cpu()
    heads = torch.unique(rows[rows < embed] // size)
    expected = torch.cat([(heads[:, None] * size + torch.arange(size)).ravel() + k * embed for k in range(3)])
    if not torch.equal(rows, expected):
        raise PruningMismatchError(
            "an attention layer would lose part of a head; please report this model to prune-env"
        )
    return PrunedMultiheadAttention(attention, rows, kept_columns)


class PrunedMultiheadAttention(nn.Module):
    """Multi-head attention with some heads, or some input channels, removed: the dense layer's
    head size and scale, fewer heads, a narrower input and output. Called like
    ``nn.MultiheadAttention`` (masks: ``attn_mask`` of shape (L, S) and ``key_padding_mask``);
    the returned weights, when asked for, are averaged over the kept heads."""

    def __init__(
        self, dense: nn.MultiheadAttention, kept_rows: torch.Tensor, kept_columns: torch.Tensor | None
    ):
        super().__init__()
        device = dense.in_proj_weight.device
        rows = kept_rows.to(device)
        self.head_dim = dense.head_dim
        self.num_heads = len(rows) // (3 * dense.head_dim)
        self.batch_first, self.dropout = dense.batch_first, dense.dropout
        weight = dense.in_proj_weight.detach()[rows]
        if kept_columns is not None:
            weight = weight[:, kept_columns.to(device)]
        self.embed_dim = weight.shape[1]
        self.in_proj_weight = nn.Parameter(weight.clone())
        self.in_proj_bias = (
            None if dense.in_proj_bias is None else nn.Parameter(dense.in_proj_bias.detach()[rows].clone())
        )
        self.out_proj = dense.out_proj

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        batched = query.dim() == 3
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        elif self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        inner = self.num_heads * self.head_dim
        w, b = self.in_proj_weight, self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else b.split(inner)
        q = F.linear(query, w[:inner], bq)
        k = F.linear(key, w[inner : 2 * inner], bk)
        v = F.linear(value, w[2 * inner :], bv)
        length, batch = q.shape[0], q.shape[1]

        def heads(t):  # (L, N, H * D) -> (N, H, L, D)
            return t.reshape(t.shape[0], batch, self.num_heads, self.head_dim).permute(1, 2, 0, 3)

        scores = heads(q) @ heads(k).transpose(-2, -1) / math.sqrt(self.head_dim)
        if is_causal and attn_mask is None:
            attn_mask = torch.ones(length, k.shape[0], dtype=torch.bool, device=q.device).triu(1)
        if attn_mask is not None:
            if attn_mask.dim() != 2:
                raise ValueError("a pruned attention takes a 2-D attn_mask (L, S) only")
            scores = (
                scores.masked_fill(attn_mask, float("-inf"))
                if attn_mask.dtype == torch.bool
                else scores + attn_mask
            )
        if key_padding_mask is not None:
            padding = key_padding_mask[:, None, None, :]
            scores = (
                scores.masked_fill(padding, float("-inf"))
                if padding.dtype == torch.bool
                else scores + padding
            )
        weights = scores.softmax(-1)
        if self.training and self.dropout > 0:
            weights = F.dropout(weights, self.dropout)
        out = (weights @ heads(v)).permute(2, 0, 1, 3).reshape(length, batch, inner)
        out = self.out_proj(out)
        if not batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        weights = weights.mean(1) if average_attn_weights else weights
        return out, weights if batched else weights.squeeze(0)


def replace_cut_window_attention(model: nn.Module) -> None:
    """Swap, in a cut network, every Swin or MaxViT attention whose heads or input width were
    cut for a :class:`PrunedWindowAttention` or :class:`PrunedRelativeAttention` (torchvision's
    take the head size, or the output width, from the input width and cannot run them)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, ShiftedWindowAttention) and (
            _window_heads(module) != module.num_heads or module.qkv.out_features != 3 * module.qkv.in_features
        ):
            replace_attribute(model, name, PrunedWindowAttention(module))
        elif isinstance(module, RelativePositionalMultiHeadAttention) and (
            module.relative_position_bias_table.shape[1] != module.n_heads
            or module.to_qkv.out_features != 3 * module.to_qkv.in_features
        ):
            replace_attribute(model, name, PrunedRelativeAttention(module))


def replace_attribute(model: nn.Module, name: str, value) -> None:
    """Put ``value`` where the dotted ``name`` (a submodule or a parameter of ``model``) was."""
    owner, _, attr = name.rpartition(".")
    setattr(model.get_submodule(owner), attr, value)


def _window_heads(attention: nn.Module) -> int:
    if hasattr(attention, "logit_scale"):
        return attention.logit_scale.shape[0]
    return attention.relative_position_bias_table.shape[1]


class PrunedWindowAttention(nn.Module):
    """torchvision's (shifted) window attention, Swin V1 or V2, with some heads removed.

    torchvision's ``shifted_window_attention`` takes the head size to be the input width over
    the number of heads, so it cannot run fewer heads of the dense size; this computes the same
    windows, shifts, masks and relative position bias for any number of heads. Made from a
    dense layer whose tensors the export plan has already cut (``qkv`` rows, ``proj`` columns,
    the bias table's or the bias MLP's per-head entries, V2's logit scale)."""

    def __init__(self, dense: nn.Module):
        super().__init__()
        self.qkv, self.proj = dense.qkv, dense.proj
        self.window_size, self.shift_size = list(dense.window_size), list(dense.shift_size)
        self.attention_dropout, self.dropout = dense.attention_dropout, dense.dropout
        self.cosine = hasattr(dense, "logit_scale")
        if self.cosine:
            self.logit_scale, self.cpb_mlp = dense.logit_scale, dense.cpb_mlp
            self.register_buffer("relative_coords_table", dense.relative_coords_table)
        else:
            self.relative_position_bias_table = dense.relative_position_bias_table
        self.num_heads = _window_heads(dense)
        self.register_buffer("relative_position_index", dense.relative_position_index)
        self.head_dim = self.qkv.out_features // (3 * self.num_heads)

    def relative_position_bias(self) -> torch.Tensor:
        """(1, heads, N, N) for the N = window area positions of a window."""
        table = (
            self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
            if self.cosine
            else self.relative_position_bias_table
        )
        area = self.window_size[0] * self.window_size[1]
        bias = table[self.relative_position_index].view(area, area, -1).permute(2, 0, 1).unsqueeze(0)
        return 16 * torch.sigmoid(bias) if self.cosine else bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = x.shape
        (wh, ww), shift = self.window_size, list(self.shift_size)
        x = F.pad(x, (0, 0, 0, (ww - width % ww) % ww, 0, (wh - height % wh) % wh))
        padded_h, padded_w = x.shape[1], x.shape[2]
        shift = [0 if w >= p else s for w, p, s in zip((wh, ww), (padded_h, padded_w), shift)]
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        rows, cols, channels = padded_h // wh, padded_w // ww, x.shape[-1]
        windows = (
            x.view(batch, rows, wh, cols, ww, channels)
            .permute(0, 1, 3, 2, 4, 5)
            .reshape(-1, wh * ww, channels)
        )
        bias = self.qkv.bias
        if self.cosine and bias is not None:  # V2 has no key bias
            bias = torch.cat(
                [bias[: len(bias) // 3], torch.zeros_like(bias[: len(bias) // 3]), bias[2 * len(bias) // 3 :]]
            )
        qkv = F.linear(windows, self.qkv.weight, bias)
        qkv = qkv.reshape(windows.shape[0], wh * ww, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.cosine:
            scale = torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
            scores = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1) * scale
        else:
            scores = (q * self.head_dim**-0.5) @ k.transpose(-2, -1)
        scores = scores + self.relative_position_bias()
        if sum(shift) > 0:
            per_image = scores.view(batch, rows * cols, self.num_heads, wh * ww, wh * ww)
            scores = (per_image + self._shift_mask(padded_h, padded_w, shift, x)[None, :, None]).flatten(0, 1)
        weights = F.dropout(scores.softmax(-1), p=self.attention_dropout, training=self.training)
        out = (weights @ v).transpose(1, 2).reshape(windows.shape[0], wh * ww, self.num_heads * self.head_dim)
        out = F.dropout(self.proj(out), p=self.dropout, training=self.training)
        out = (
            out.view(batch, rows, cols, wh, ww, -1)
            .permute(0, 1, 3, 2, 4, 5)
            .reshape(batch, padded_h, padded_w, -1)
        )
        if sum(shift) > 0:
            out = torch.roll(out, shifts=(shift[0], shift[1]), dims=(1, 2))
        return out[:, :height, :width, :].contiguous()

    def _shift_mask(self, padded_h: int, padded_w: int, shift: list[int], like: torch.Tensor) -> torch.Tensor:
        """-100 between positions of a window that come from different regions after the
        cyclic shift, 0 elsewhere: (windows, N, N)."""
        (wh, ww) = self.window_size
        region = like.new_zeros((padded_h, padded_w))
        label = 0
        for h0, h1 in ((0, -wh), (-wh, -shift[0]), (-shift[0], None)):
            for w0, w1 in ((0, -ww), (-ww, -shift[1]), (-shift[1], None)):
                region[h0:h1, w0:w1] = label
                label += 1
        region = region.view(padded_h // wh, wh, padded_w // ww, ww).permute(0, 2, 1, 3).reshape(-1, wh * ww)
        differ = region.unsqueeze(1) - region.unsqueeze(2)
        return differ.masked_fill(differ != 0, -100.0).masked_fill(differ == 0, 0.0)


class PrunedRelativeAttention(nn.Module):
    """torchvision's MaxViT attention (relative positional multi-head attention over the
    partitions of a block) with some heads removed: the dense head size and scale, any number
    of heads. Made from a dense layer whose ``to_qkv`` rows, ``merge`` columns and bias table
    columns the export plan has already cut."""

    def __init__(self, dense: RelativePositionalMultiHeadAttention):
        super().__init__()
        self.to_qkv, self.merge = dense.to_qkv, dense.merge
        self.relative_position_bias_table = dense.relative_position_bias_table
        self.register_buffer("relative_position_index", dense.relative_position_index)
        self.n_heads, self.head_dim = dense.relative_position_bias_table.shape[1], dense.head_dim
        self.scale_factor, self.max_seq_len = dense.scale_factor, dense.max_seq_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, partitions, positions, _ = x.shape

        def heads(t):  # (B, G, P, H * D) -> (B, G, H, P, D)
            return t.reshape(batch, partitions, positions, self.n_heads, self.head_dim).transpose(2, 3)

        q, k, v = (heads(t) for t in self.to_qkv(x).chunk(3, dim=-1))
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(self.max_seq_len, self.max_seq_len, -1).permute(2, 0, 1).unsqueeze(0)
        weights = (q @ (k * self.scale_factor).transpose(-2, -1) + bias).softmax(-1)
        out = (
            (weights @ v).transpose(2, 3).reshape(batch, partitions, positions, self.n_heads * self.head_dim)
        )
        return self.merge(out)
