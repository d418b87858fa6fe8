"""Analytic parameter and MAC counts of a partly pruned network, without building it.

The observation tells the agent how much of the budget its decisions so far have used. Building
the pruned network at every step would be slow, so this counts, for every layer, how many
output and input positions survive the masks, and scales the layer's parameters and
multiply-accumulates accordingly. For parameters this is exact. For MACs, given example inputs,
it counts what the FLOPs budget counts (Torch-Pruning's counter: conv and linear with their
biases, norms, activations, pooling), each module's count scaled by the share of its channels
that survive (a module without parameters takes the share of the last layer before it with
as many channels; dense when there is none): exact for sequential and residual CNNs and MLPs
(tested on the zoo's tasks), an approximation where channels are concatenated or reshaped.
Without example inputs, conv and linear MACs only. The cost
itself is always measured on the real, physically pruned network.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from prune_env.surgery.dependency_groups import GroupAnalysis
from prune_env.surgery.layers import forward_with_hook, single_example


class StructureEstimate:
    """Params and MACs ratios of masks, from the dense network's structure.

    Args:
        example_inputs: a batch the network runs on; with it, MACs are counted as the FLOPs
            budget counts them (every counted module), without it conv and linear MACs only.
    """

    def __init__(self, analysis: GroupAnalysis, model: nn.Module, example_inputs=None):
        self.analysis = analysis
        self.total_params = sum(p.numel() for p in model.parameters())
        self.total_macs = sum(info.macs for info in analysis.layers.values())
        # module -> (dense ops, ops that scale with its outputs only, channel source) of every
        # counted module; None: conv and linear MACs only
        self._ops: dict[str, tuple[float, float, str | None]] | None = None
        if example_inputs is not None:
            self._ops = _counted_ops(model, single_example(example_inputs), analysis)
            self.total_macs = sum(dense for dense, _, _ in self._ops.values())
        widths = [g.width for g in analysis.groups]
        # (layer, side) -> (group index, positions per unit of that group) for every slice that
        # removes positions from that dimension: a dropped unit removes its count of positions.
        self._slices = defaultdict(list)
        for group in analysis.groups:
            for s in group.slices:
                counts = np.bincount(s.units, minlength=widths[group.index]).astype(np.int64)
                self._slices[(s.module, s.side)].append((group.index, counts))
        # per layer, once: (rows, columns or None, product of the remaining dims, dense size) per tensor
        self._tensors = {
            name: [
                (shape[0], shape[1] if len(shape) > 1 else None, int(np.prod(shape[2:])), int(np.prod(shape)))
                for shape in info.param_shapes.values()
            ]
            for name, info in analysis.layers.items()
        }

    def _pruned(self, layer: str, side: str, dropped: Sequence[np.ndarray]) -> int:
        return sum(int(counts @ dropped[g]) for g, counts in self._slices.get((layer, side), ()))

    def ratios(self, keep: Sequence[np.ndarray]) -> tuple[float, float]:
        """(params ratio, MACs ratio) of the network pruned by ``keep``, relative to dense."""
        dropped = [(~np.asarray(k, dtype=bool)).astype(np.int64) for k in keep]
        removed_params = 0
        macs = 0.0
        kept_share: dict[str, tuple[float, float]] = {}  # layer -> (outputs kept, inputs kept)
        for name, info in self.analysis.layers.items():
            out_removed = self._pruned(name, "out", dropped)
            # a grouped conv loses whole convolution groups: rows, counted on its output side
            in_removed = self._pruned(name, "in", dropped) if info.conv_groups == 1 else 0
            for rows, cols, rest, dense in self._tensors[name]:
                kept_cols = (cols - in_removed) if cols is not None else 1
                removed_params += dense - (rows - out_removed) * kept_cols * rest
            out_keep = 1.0 - out_removed / info.out_size if info.out_size else 1.0
            in_keep = 1.0 - in_removed / info.in_size if info.in_size else 1.0
            kept_share[name] = (out_keep, in_keep)
            if info.macs and self._ops is None:
                macs += info.macs * out_keep * in_keep
        if self._ops is not None:
            for name, (dense, output_only, source) in self._ops.items():
                out_keep, in_keep = kept_share.get(name, (None, 1.0))
                if out_keep is None:  # no parameters: its channels are its producer's
                    out_keep = kept_share[source][0] if source in kept_share else 1.0
                macs += (dense - output_only) * out_keep * in_keep + output_only * out_keep
        params_ratio = (self.total_params - removed_params) / max(self.total_params, 1)
        return params_ratio, macs / max(self.total_macs, 1.0)


def _counted_ops(
    model: nn.Module, example, analysis: GroupAnalysis
) -> dict[str, tuple[float, float, str | None]]:
    """Every module the FLOPs budget counts: (its dense ops for one example, the part that
    scales with its outputs only: a conv or linear layer's bias, the whole count for a norm,
    activation or pooling module, and for a module without parameters the layer whose channels
    it carries: the last layer with parameters that ran before it with as many output channels
    as it has inputs (None: none, counted dense)."""
    _, _, per_module, _ = tp.utils.count_ops_and_params(model, example, layer_wise=True)
    names = {m: n for n, m in model.named_modules()}
    order: list[tuple[str, int | None, int | None]] = []  # (name, input channels, output channels)

    def channels(t) -> int | None:
        return int(t.shape[1]) if isinstance(t, torch.Tensor) and t.dim() >= 2 else None

    def hook(module, inputs, output):
        order.append((names[module], channels(inputs[0]) if inputs else None, channels(output)))

    forward_with_hook(model, example, [m for m in model.modules() if not list(m.children())], hook)
    ops: dict[str, tuple[float, float, str | None]] = {}
    last_with_channels: dict[int, str] = {}  # output channels -> the last layer with parameters
    for name, c_in, c_out in order:
        module = model.get_submodule(name)
        dense = float(per_module.get(module) or 0.0)
        info = analysis.layers.get(name)
        if dense and name not in ops:
            if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
                output_only = max(dense - (info.macs if info else dense), 0.0)
                ops[name] = (dense, output_only, None)
            elif info is not None and info.out_size:
                ops[name] = (dense, dense, None)
            else:
                ops[name] = (dense, dense, last_with_channels.get(c_in))
        if info is not None and c_out is not None:
            last_with_channels[c_out] = name
    return ops
