"""LayerNorm in a masked network: statistics over the kept channels only.

Zeroing a pruned channel is not enough for a LayerNorm: its mean and variance run over every
channel, so a zero still counts in them, and the masked network would differ from the pruned
one, whose LayerNorm no longer sees the channel. A masked LayerNorm therefore records its kept
channels (:func:`drop_channels`), and while :func:`kept_channel_statistics` is active each such
LayerNorm normalizes over those channels alone and writes zero on the others - exactly what the
cut LayerNorm of the pruned network computes. Layers are recognised by their weight tensor,
which is how every ``nn.LayerNorm`` (and subclasses such as torchvision's ``LayerNorm2d``,
which permute around ``F.layer_norm``) reaches the functional call.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

_KEPT = "_prune_env_kept_channels"


def reset(norm: nn.LayerNorm) -> None:
    """Every channel kept again."""
    if hasattr(norm, _KEPT):
        delattr(norm, _KEPT)


def drop_channels(norm: nn.LayerNorm, positions) -> None:
    """Leave ``positions`` out of the layer's statistics (and its output) from now on."""
    kept = getattr(norm, _KEPT, None)
    if kept is None:
        kept = torch.ones(norm.normalized_shape[0], dtype=torch.bool, device=norm.weight.device)
    kept[torch.as_tensor(positions, device=kept.device)] = False
    setattr(norm, _KEPT, kept)


@contextlib.contextmanager
def kept_channel_statistics(model: nn.Module):
    """Within the block, the masked LayerNorms of ``model`` normalize over their kept channels."""
    masked = {
        id(m.weight): getattr(m, _KEPT)
        for m in model.modules()
        if isinstance(m, nn.LayerNorm) and getattr(m, _KEPT, None) is not None
    }
    if not masked:
        yield
        return
    original = F.layer_norm

    def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
        kept = masked.get(id(weight)) if weight is not None else None
        if kept is None:
            return original(input, normalized_shape, weight, bias, eps)
        index = kept.nonzero().squeeze(1)
        out = torch.zeros_like(input)
        out[..., index] = original(
            input[..., index], (len(index),), weight[index], None if bias is None else bias[index], eps
        )
        return out

    F.layer_norm = layer_norm
    try:
        yield
    finally:
        F.layer_norm = original
