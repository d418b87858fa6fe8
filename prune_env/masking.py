"""Masks on the live network, and the physically pruned copy that must agree with them.

A mask zeroes, for every pruned unit of a group, the unit's output rows (conv/linear weights and
biases, normalization scale and shift) and the input columns of every consumer. The network then
computes exactly what the physically smaller network computes; :func:`prune_copy` builds that
smaller network with Torch-Pruning, and :func:`output_gap` proves the two agree. Torch-Pruning
mis-prunes some topologies (concat -> flatten -> linear in 1.6), so nothing it returns is used
unverified: :func:`probe_groups` checks every group of a new model once, and the environment
checks every export it makes.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from prune_env.errors import PruningMismatchError, UnsupportedModelError
from prune_env.groups import GroupAnalysis, PrunableGroup, build_dependency_graph, call_model

#: Two networks agree when their outputs differ by at most this, relative to the output scale.
AGREEMENT_TOLERANCE = 1e-4

Keep = Sequence[np.ndarray]  # one boolean array per group, True = unit kept


def apply_masks(model: nn.Module, groups: Sequence[PrunableGroup], keep: Keep) -> None:
    """Zero, in place, every slice of every pruned unit."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for group in groups:
            kept = keep[group.index]
            if kept.all():
                continue
            for s in group.slices:
                positions = s.positions[~kept[s.units]]
                if positions.size == 0:
                    continue
                module = modules[s.module]
                if s.side == "out":
                    for param in module.parameters(recurse=False):
                        idx = torch.as_tensor(positions, device=param.device)
                        param.index_fill_(0, idx, 0.0)
                else:
                    idx = torch.as_tensor(positions, device=module.weight.device)
                    module.weight.index_fill_(1, idx, 0.0)


def prune_copy(model: nn.Module, example_inputs, groups: Sequence[PrunableGroup], keep: Keep) -> nn.Module:
    """A deep copy of ``model`` with every pruned unit physically removed (eval mode)."""
    pruned = copy.deepcopy(model).eval()
    graph = build_dependency_graph(pruned, example_inputs)
    modules = dict(pruned.named_modules())
    for group in groups:
        drop = np.flatnonzero(~keep[group.index])
        if drop.size == 0:
            continue
        if drop.size >= group.width:
            raise PruningMismatchError(f"group {group.name!r} would lose all of its {group.width} units")
        root = modules[group.name]
        pruner = graph.get_pruner_of_module(root)
        try:
            graph.get_pruning_group(root, pruner.prune_out_channels, drop.tolist()).prune()
        except Exception as exc:
            raise PruningMismatchError(
                f"torch-pruning failed on group {group.name!r}: {type(exc).__name__}: {exc}"
            ) from exc
    return pruned


def output_gap(reference: nn.Module, candidate: nn.Module, inputs) -> float:
    """Largest absolute output difference, divided by max(1, largest |reference output|).

    Infinite when shapes differ or the candidate fails to run.
    """
    with torch.no_grad():
        expected = call_model(reference, inputs)
        try:
            got = call_model(candidate, inputs)
        except Exception:
            return float("inf")
    if got.shape != expected.shape:
        return float("inf")
    scale = max(1.0, float(expected.abs().max()))
    return float((got - expected).abs().max()) / scale


def masked_copy(model: nn.Module, groups: Sequence[PrunableGroup], keep: Keep) -> nn.Module:
    masked = copy.deepcopy(model).eval()
    apply_masks(masked, groups, keep)
    return masked


def check_export(masked: nn.Module, pruned: nn.Module, inputs) -> None:
    gap = output_gap(masked, pruned, inputs)
    if not gap <= AGREEMENT_TOLERANCE:
        raise PruningMismatchError(
            f"the physically pruned network disagrees with the masked one (relative gap {gap:.3g} > "
            f"{AGREEMENT_TOLERANCE}); please report this model to prune-env"
        )


def random_keep(groups: Sequence[PrunableGroup], rng: np.random.Generator) -> list[np.ndarray]:
    """Random masks that keep at least one and drop at least one unit of every group of width > 1."""
    keep = []
    for group in groups:
        kept = rng.random(group.width) < 0.5
        if group.width > 1:
            on, off = rng.choice(group.width, size=2, replace=False)
            kept[on], kept[off] = True, False
        else:
            kept[:] = True
        keep.append(kept)
    return keep


def probe_groups(model: nn.Module, example_inputs, analysis: GroupAnalysis, seed: int = 0) -> None:
    """Prune a copy for real and compare it with the masked network; name any failing layer.

    All groups are probed at once (one export); only on failure is each group probed alone,
    so that the error can name the layers at fault.
    """
    rng = np.random.default_rng(seed)
    groups = analysis.groups
    keep = random_keep(groups, rng)
    if _agrees(model, example_inputs, groups, keep):
        return
    failing = []
    for group in groups:
        alone = [np.ones(g.width, dtype=bool) for g in groups]
        alone[group.index] = keep[group.index]
        if not _agrees(model, example_inputs, groups, alone):
            failing.append(group)
    if not failing:  # only the combination fails: report every group
        failing = list(groups)
    described = "; ".join(f"{g.name!r} (coupled with {', '.join(g.layers)})" for g in failing)
    raise UnsupportedModelError(
        f"structured pruning of layer(s) {described} gives a network that disagrees with the masked "
        "one or fails to run (a topology torch-pruning mis-handles, e.g. concat -> flatten -> "
        "linear). Wrap such layers so they are not pruned, or restructure the model."
    )


def _agrees(model: nn.Module, example_inputs, groups, keep) -> bool:
    masked = masked_copy(model, groups, keep)
    try:
        check_export(masked, prune_copy(model, example_inputs, groups, keep), example_inputs)
    except (PruningMismatchError, UnsupportedModelError):
        return False
    return True
