"""Small helpers about layers and their weights that every part of network surgery uses.

A leaf module: it imports nothing of prune_env but the plain description of a group.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from prune_env.surgery.units import PrunableGroup

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def call_model(model: nn.Module, inputs) -> torch.Tensor:
    """Run ``model`` on a tensor or a tuple of tensors."""
    return model(*inputs) if isinstance(inputs, (tuple, list)) else model(inputs)


def single_example(inputs):
    """The first example of a batch (or of each tensor of a tuple): MACs are per example."""
    if isinstance(inputs, (tuple, list)):
        return tuple(t[:1] for t in inputs)
    return inputs[:1]


def forward_with_hook(model: nn.Module, inputs, modules, hook) -> None:
    """One forward pass of ``model`` on ``inputs`` without gradients, with ``hook`` registered
    as a forward hook on ``modules`` for its duration only."""
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        with torch.no_grad():
            call_model(model, inputs)
    finally:
        for h in handles:
            h.remove()


def is_grouped_conv(module: nn.Module) -> bool:
    """A convolution whose weight holds only a share of its inputs (``groups`` > 1), depthwise
    ones included."""
    return isinstance(module, nn.modules.conv._ConvNd) and module.groups > 1


def layer_weight(module: nn.Module) -> torch.Tensor:
    """The weight whose rows are a layer's outputs and columns its inputs (attention's packed
    input projection for ``nn.MultiheadAttention``)."""
    return module.in_proj_weight if isinstance(module, nn.MultiheadAttention) else module.weight


def unit_importance(model: nn.Module, group: PrunableGroup) -> np.ndarray:
    """L1 magnitude of each unit: the sum of |w| of every producer's output slice of that unit
    (for attention heads, of their query, key and value projection rows)."""
    modules = dict(model.named_modules())
    scores = np.zeros(group.width, dtype=np.float64)
    for s in group.slices:
        module = modules.get(s.module)
        if s.side != "out" or not isinstance(module, (*PRUNABLE_TYPES, nn.MultiheadAttention)):
            continue
        weight = layer_weight(module).detach()
        per_position = weight.abs().flatten(1).sum(1).double().cpu().numpy()[s.positions]
        np.add.at(scores, s.units, per_position)
    return scores
