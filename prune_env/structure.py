"""Analytic parameter and MAC counts of a partly pruned network, without building it.

The observation tells the agent how much of the budget its decisions so far have used. Building
the pruned network at every step would be slow, so this counts, for every layer, how many
output and input positions survive the masks, and scales the layer's parameters and
multiply-accumulates accordingly. For parameters this is exact; for MACs it counts conv and
linear layers only (the bulk of the compute). The cost itself is always measured on the real,
physically pruned network.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from torch import nn

from prune_env.groups import GroupAnalysis


class StructureEstimate:
    def __init__(self, analysis: GroupAnalysis, model: nn.Module):
        self.analysis = analysis
        self.total_params = sum(p.numel() for p in model.parameters())
        self.total_macs = sum(info.macs for info in analysis.layers.values())
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
        for name, info in self.analysis.layers.items():
            out_removed = self._pruned(name, "out", dropped)
            # a grouped conv loses whole convolution groups: rows, counted on its output side
            in_removed = self._pruned(name, "in", dropped) if info.conv_groups == 1 else 0
            for rows, cols, rest, dense in self._tensors[name]:
                kept_cols = (cols - in_removed) if cols is not None else 1
                removed_params += dense - (rows - out_removed) * kept_cols * rest
            if info.macs:
                out_keep = 1.0 - out_removed / info.out_size if info.out_size else 1.0
                in_keep = 1.0 - in_removed / info.in_size if info.in_size else 1.0
                macs += info.macs * out_keep * in_keep
        params_ratio = (self.total_params - removed_params) / max(self.total_params, 1)
        return params_ratio, macs / max(self.total_macs, 1.0)
