"""Attention heads as units: the groups of ``nn.MultiheadAttention`` and their export.

A head owns rows of the packed input projection (its query, key and value slices) and columns
of the output projection; a residual stream around the attention owns the input projection's
columns and the output projection's rows. Masking a head zeroes those: its queries and keys are zero, so its
attention is uniform over values that are also zero, and it adds nothing to the output -
exactly what the attention without that head computes. ``nn.MultiheadAttention`` itself cannot
hold fewer heads than ``embed_dim / head_dim``, nor a different input width, so the export
replaces a pruned one with :class:`PrunedMultiheadAttention`, which keeps the heads' size and scale.
Torch-Pruning does not know these units: :func:`prune_env.groups.head_groups` makes the groups
(``tied``: exported by prune-env's own cut only, and proven like every group).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

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
