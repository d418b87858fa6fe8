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
        # (layer, side) -> list of (group index, slice) that remove positions from that dim
        self._slices = defaultdict(list)
        for group in analysis.groups:
            for s in group.slices:
                self._slices[(s.module, s.side)].append((group.index, s))

    def _pruned(self, layer: str, side: str, keep: Sequence[np.ndarray]) -> int:
        return sum(int((~keep[g][s.units]).sum()) for g, s in self._slices.get((layer, side), ()))

    def ratios(self, keep: Sequence[np.ndarray]) -> tuple[float, float]:
        """(params ratio, MACs ratio) of the network pruned by ``keep``, relative to dense."""
        removed_params = 0
        macs = 0.0
        for name, info in self.analysis.layers.items():
            out_removed = self._pruned(name, "out", keep)
            in_removed = self._pruned(name, "in", keep)
            for shape in info.param_shapes.values():
                dense = int(np.prod(shape))
                rows = shape[0] - out_removed
                cols = (shape[1] - in_removed) if len(shape) > 1 else 1
                removed_params += dense - rows * cols * int(np.prod(shape[2:]))
            if info.macs:
                out_keep = 1.0 - out_removed / info.out_size if info.out_size else 1.0
                in_keep = 1.0 - in_removed / info.in_size if info.in_size else 1.0
                macs += info.macs * out_keep * in_keep
        params_ratio = (self.total_params - removed_params) / max(self.total_params, 1)
        return params_ratio, macs / max(self.total_macs, 1.0)
