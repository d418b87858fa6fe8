"""Importance criteria for the classic baselines: one score per unit of every group.

- :func:`taylor_importance`: first-order Taylor expansion of the loss, summed over every
  parameter a group unit owns (its producers' output slices, their normalization scale and
  shift, its consumers' input slices) and squared, averaged over training batches: the group
  Taylor criterion of Molchanov et al. (CVPR 2019). Scores estimate the loss change of removing
  a unit, so they compare across layers without normalization.
- :func:`bn_scale_importance`: |gamma| of the group's BatchNorm layers (network slimming, Liu et
  al., ICCV 2017); ``None`` for a group without BatchNorm.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prune_env.errors import NotApplicableError
from prune_env.problem import PruneProblem
from prune_env.surgery.layers import is_grouped_conv, layer_weight

BATCHNORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _per_position(values: torch.Tensor, dim: int) -> np.ndarray:
    """Sum of ``values`` over everything but dimension ``dim``."""
    if values.dim() == 1:
        return values.double().cpu().numpy()
    return values.transpose(0, dim).flatten(1).sum(1).double().cpu().numpy()


def taylor_importance(
    problem: PruneProblem, *, batches: int = 8, batch_size: int = 64, seed: int = 0
) -> list[np.ndarray]:
    """Group Taylor scores ``(sum over the unit's parameters of w * dL/dw)^2``, averaged over
    ``batches`` training batches (the dense network in eval mode: BatchNorm uses its statistics)."""
    model = copy.deepcopy(problem.model).eval()
    modules = dict(model.named_modules())
    bare = dict(model.named_parameters())
    rng = np.random.default_rng(seed)
    scores = [np.zeros(g.width) for g in problem.groups]
    for _ in range(batches):
        inputs, labels = problem.training_batch(rng, batch_size)
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(inputs.to(problem.device)), labels.to(problem.device)).backward()
        for group in problem.groups:
            contribution = np.zeros(group.width)
            for s in group.slices:
                if s.bare:
                    sliced = [(bare[s.module], s.dim)]
                elif s.side == "out":
                    sliced = [(p, 0) for p in modules[s.module].parameters(recurse=False)]
                elif is_grouped_conv(modules[s.module]):
                    continue  # its inputs remove whole convolution groups: rows, counted on its output side
                else:
                    sliced = [(layer_weight(modules[s.module]), 1)]
                for param, dim in sliced:
                    if param.grad is None:
                        continue
                    per_position = _per_position((param * param.grad).detach(), dim)
                    np.add.at(contribution, s.units, per_position[s.positions])
            scores[group.index] += contribution**2
    return [s / batches for s in scores]


def bn_scale_importance(problem: PruneProblem) -> list[np.ndarray | None]:
    """|gamma| summed over the BatchNorm layers of each group; ``None`` where a group has none.

    Raises:
        NotApplicableError: the network has no BatchNorm layer at all.
    """
    modules = dict(problem.model.named_modules())
    scores: list[np.ndarray | None] = []
    for group in problem.groups:
        total = None
        for s in group.slices:
            module = modules.get(s.module)
            if s.side == "out" and isinstance(module, BATCHNORM_TYPES) and module.weight is not None:
                total = np.zeros(group.width) if total is None else total
                np.add.at(total, s.units, module.weight.detach().abs().double().cpu().numpy()[s.positions])
        scores.append(total)
    if all(s is None for s in scores):
        raise NotApplicableError(
            f"bn-scale ranks BatchNorm scales, and {problem.task} has no BatchNorm layer"
        )
    return scores
