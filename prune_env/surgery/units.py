"""What a prunable group is, as plain picklable data: the slices of layers that make its units.

:mod:`prune_env.surgery.dependency_groups` finds groups with Torch-Pruning's dependency graph and
:mod:`prune_env.surgery.architecture_groups` builds the ones it cannot follow; masking, export and the
estimates only ever read these records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class UnitSlice:
    """Positions along one dimension of one layer that belong to a group's units.

    ``positions[k]`` is an index along the layer's output (``side="out"``) or input
    (``side="in"``) dimension; ``units[k]`` is the group unit it belongs to. One unit may own
    several positions (a conv channel feeding a Linear after ``flatten`` owns H*W inputs).
    """

    module: str
    side: str  # "out" or "in"
    positions: np.ndarray
    units: np.ndarray
    # None for a layer's slice. For a bare parameter (a ConvNeXt layer scale, a ViT class token:
    # ``module`` is then the parameter's full name, ``side`` is "out"), the dimension it is cut along.
    dim: int | None = None

    @property
    def bare(self) -> bool:
        return self.dim is not None


@dataclass
class PrunableGroup:
    """One step of an episode: a set of coupled layers pruned together."""

    index: int
    name: str  # the root layer's module name
    kind: str  # "conv", "linear" or "heads" (attention heads of an nn.MultiheadAttention)
    width: int  # number of units (root output channels / neurons)
    in_width: int
    kernel_size: int
    stride: int
    layers: list[str]  # every layer whose outputs are pruned with this group
    slices: list[UnitSlice] = field(repr=False)
    params_share: float = 0.0  # share of dense parameters touched by this group
    flops_share: float = 0.0  # share of dense MACs touched by this group
    # True when the group runs through a layer that keeps whole channel groups (a grouped
    # convolution, a GroupNorm): a unit may then be several root channels (one convolution group
    # with the channels that feed it), and only prune-env's own cut exports it
    tied: bool = False

    @property
    def coupled(self) -> bool:
        """True when several layers write the same units (a residual stream)."""
        return len(self.layers) > 1
