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
from torchvision.models import VisionTransformer

import prune_env.surgery.masked_norms as masked_norms
from prune_env.errors import PruningMismatchError, UnsupportedModelError
from prune_env.surgery.dependency_groups import GroupAnalysis, build_dependency_graph, tolerant_index_mapping
from prune_env.surgery.layers import call_model, is_grouped_conv, layer_weight
from prune_env.surgery.pruned_attention import cut_attention, replace_attribute, replace_cut_window_attention
from prune_env.surgery.units import PrunableGroup, UnitSlice

#: Two networks agree when their outputs differ by at most this, relative to the output scale.
AGREEMENT_TOLERANCE = 1e-4

Keep = Sequence[np.ndarray]  # one boolean array per group, True = unit kept


def apply_masks(model: nn.Module, groups: Sequence[PrunableGroup], keep: Keep) -> None:
    """Zero, in place, every slice of every pruned unit; a LayerNorm also leaves the pruned
    channels out of its statistics (:mod:`prune_env.surgery.masked_norms`: run the masked network
    inside ``kept_channel_statistics``, as :func:`output_gap` does)."""
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    for group in groups:
        for s in group.slices:
            if isinstance(modules.get(s.module), nn.LayerNorm):
                masked_norms.reset(modules[s.module])
    with torch.no_grad():
        for group in groups:
            kept = keep[group.index]
            if kept.all():
                continue
            for s in group.slices:
                positions = s.positions[~kept[s.units]]
                if positions.size == 0:
                    continue
                if s.bare:
                    param = params[s.module]
                    param.index_fill_(s.dim, torch.as_tensor(positions, device=param.device), 0.0)
                    continue
                module = modules[s.module]
                if s.side == "out":
                    for param in module.parameters(recurse=False):
                        idx = torch.as_tensor(positions, device=param.device)
                        param.index_fill_(0, idx, 0.0)
                    if isinstance(module, nn.LayerNorm):
                        masked_norms.drop_channels(module, positions)
                elif is_grouped_conv(module):  # whole convolution groups: their output rows
                    rows = torch.as_tensor(_group_rows(module, positions), device=module.weight.device)
                    for param in module.parameters(recurse=False):
                        param.index_fill_(0, rows, 0.0)
                else:
                    weight = layer_weight(module)
                    weight.index_fill_(1, torch.as_tensor(positions, device=weight.device), 0.0)


def _group_rows(conv: nn.Module, in_positions: np.ndarray) -> np.ndarray:
    """The output rows of the convolution groups that read ``in_positions``."""
    per_in, per_out = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    return (np.unique(in_positions // per_in)[:, None] * per_out + np.arange(per_out)).ravel()


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
        if group.tied:
            raise PruningMismatchError(
                f"group {group.name!r} removes whole convolution groups, which Torch-Pruning's root-channel "
                "indices cannot express; export it with cut_copy"
            )
        root = modules[group.name]
        pruner = graph.get_pruner_of_module(root)
        try:
            with tolerant_index_mapping():
                graph.get_pruning_group(root, pruner.prune_out_channels, drop.tolist()).prune()
        except Exception as exc:
            raise PruningMismatchError(
                f"torch-pruning failed on group {group.name!r}: {type(exc).__name__}: {exc}"
            ) from exc
    return pruned


# Layers whose tensors :func:`cut_copy` knows how to cut; a model with any other layer in a group
# is exported by Torch-Pruning (:func:`prune_copy`) every time.
CUTTABLE_TYPES = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm,
    nn.LayerNorm, nn.MultiheadAttention,
)  # fmt: skip

# layer name -> the (group index, slice) pairs that touch it
ExportPlan = dict[str, list[tuple[int, UnitSlice]]]


def export_plan(model: nn.Module, groups: Sequence[PrunableGroup]) -> ExportPlan | None:
    """Which positions of which layer belong to which group's units, computed once per model, so
    that an export cuts the dense tensors directly instead of re-tracing the dependency graph
    (the plan is the groups' own slices, the ones the masks zero). ``None`` when a group touches
    a layer :func:`cut_copy` cannot cut (InstanceNorm, attention, ...)."""
    if uncuttable_layers(model, groups):
        return None
    plan: ExportPlan = {}
    for group in groups:
        for s in group.slices:
            plan.setdefault(s.module, []).append((group.index, s))
    return plan


def uncuttable_layers(model: nn.Module, groups: Sequence[PrunableGroup]) -> list[str]:
    """The layers in some group that :func:`cut_copy` cannot cut."""
    modules = dict(model.named_modules())
    names = {s.module for g in groups for s in g.slices if not s.bare}
    return sorted(n for n in names if not isinstance(modules[n], CUTTABLE_TYPES))


def cut_copy(model: nn.Module, plan: ExportPlan, keep: Keep) -> nn.Module:
    """A deep copy of ``model`` with every pruned unit's rows and columns cut out (eval mode):
    the network :func:`prune_copy` builds, from the plan instead of a fresh trace."""
    pruned = copy.deepcopy(model).eval()
    modules = dict(pruned.named_modules())
    params = dict(pruned.named_parameters())
    for name, slices in plan.items():
        dropped = {"out": [], "in": []}
        for group_index, s in slices:
            dropped[s.side].append(s.positions[~keep[group_index][s.units]])
        if slices[0][1].bare:
            dim = slices[0][1].dim
            kept = _kept(params[name].shape[dim], dropped["out"])
            if kept is not None:
                _cut_parameter(pruned, name, dim, kept)
            continue
        module = modules[name]
        if isinstance(
            module, nn.MultiheadAttention
        ):  # heads: a replacement layer (prune_env.surgery.pruned_attention)
            rows, columns = (
                _kept(3 * module.embed_dim, dropped["out"]),
                _kept(module.embed_dim, dropped["in"]),
            )
            replace_attribute(pruned, name, cut_attention(module, rows, columns))
            continue
        out_size, in_size = _sizes(module)
        _cut(module, _kept(out_size, dropped["out"]), _kept(in_size, dropped["in"]) if in_size else None)
    _sync_width_attributes(pruned)
    return pruned


def _sync_width_attributes(model: nn.Module) -> None:
    """Widths a forward reads from attributes rather than tensors: torchvision's
    VisionTransformer reshapes its patches by ``hidden_dim``, its Swin attention splits heads by
    the input width over ``num_heads``."""
    replace_cut_window_attention(model)
    for module in model.modules():
        if isinstance(module, VisionTransformer):
            module.hidden_dim = module.conv_proj.out_channels


def _cut_parameter(model: nn.Module, name: str, dim: int, keep: torch.Tensor) -> None:
    param = model.get_parameter(name)
    with torch.no_grad():
        cut = param.index_select(dim, keep.to(param.device))
    replace_attribute(model, name, nn.Parameter(cut, requires_grad=param.requires_grad))


def _sizes(module: nn.Module) -> tuple[int, int | None]:
    if isinstance(module, nn.modules.conv._ConvNd):
        return module.out_channels, module.in_channels
    if isinstance(module, nn.Linear):
        return module.out_features, module.in_features
    if isinstance(module, nn.GroupNorm):
        return module.num_channels, None
    if isinstance(module, nn.LayerNorm):
        return module.normalized_shape[0], None
    return module.num_features, None


def _kept(size: int, dropped: list[np.ndarray]) -> torch.Tensor | None:
    """The positions left after ``dropped``, in order; ``None`` when nothing is dropped."""
    if not dropped or not any(d.size for d in dropped):
        return None
    alive = np.ones(size, dtype=bool)
    for d in dropped:
        alive[d] = False
    if not alive.any():
        raise PruningMismatchError(f"a layer would lose all of its {size} channels")
    return torch.from_numpy(np.flatnonzero(alive))


def _cut(module: nn.Module, out_keep: torch.Tensor | None, in_keep: torch.Tensor | None) -> None:
    """Cut a layer's tensors to the kept outputs and inputs, and its size attributes with them."""
    with torch.no_grad():
        if out_keep is not None:
            for attr in ("weight", "bias", "running_mean", "running_var"):
                tensor = getattr(module, attr, None)
                if tensor is None:
                    continue
                cut = tensor.index_select(0, out_keep.to(tensor.device))
                if isinstance(tensor, nn.Parameter):
                    setattr(module, attr, nn.Parameter(cut, requires_grad=tensor.requires_grad))
                else:
                    setattr(module, attr, cut)  # a buffer: assigning a tensor keeps it registered
        if is_grouped_conv(module):
            _regroup(module, out_keep, in_keep)
            return
        if in_keep is not None:
            weight = module.weight
            module.weight = nn.Parameter(
                weight.index_select(1, in_keep.to(weight.device)), requires_grad=weight.requires_grad
            )
    if isinstance(module, nn.modules.conv._ConvNd):
        module.out_channels, module.in_channels = module.weight.shape[0], module.weight.shape[1]
    elif isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape[0], module.weight.shape[1]
    elif isinstance(module, nn.GroupNorm) and out_keep is not None:
        _cut_group_norm(module, out_keep)
    elif isinstance(module, nn.LayerNorm) and out_keep is not None:
        module.normalized_shape = (len(out_keep),)
    elif out_keep is not None:
        module.num_features = len(out_keep)


def _cut_group_norm(norm: nn.GroupNorm, out_keep: torch.Tensor) -> None:
    """A GroupNorm after its channels were cut: whole norm groups are gone, or the tie broke."""
    per = norm.num_channels // norm.num_groups
    kept = torch.unique(out_keep.cpu() // per)
    if len(out_keep) != len(kept) * per:
        raise PruningMismatchError(
            "a GroupNorm would lose part of a norm group; please report this model to prune-env"
        )
    norm.num_groups, norm.num_channels = len(kept), len(out_keep)


def _regroup(conv: nn.Module, out_keep: torch.Tensor | None, in_keep: torch.Tensor | None) -> None:
    """A grouped convolution after its rows were cut: whole convolution groups are gone (its
    weight's input dimension, per group, is unchanged); anything else is a broken tie."""
    per_in, per_out = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    rows = torch.arange(conv.out_channels) if out_keep is None else out_keep.cpu()
    kept = torch.unique(rows // per_out)
    inputs = kept if in_keep is None else torch.unique(in_keep.cpu() // per_in)
    whole = len(rows) == len(kept) * per_out and (in_keep is None or len(in_keep) == len(inputs) * per_in)
    if not whole or not torch.equal(inputs, kept):
        raise PruningMismatchError(
            "a grouped convolution would lose part of a convolution group; please report this model to prune-env"
        )
    conv.groups = len(kept)
    conv.out_channels, conv.in_channels = len(rows), len(kept) * per_in


def output_gap(reference: nn.Module, candidate: nn.Module, inputs) -> float:
    """Largest absolute output difference, divided by max(1, largest |reference output|).

    Infinite when shapes differ or the candidate fails to run. A masked reference's LayerNorms
    use their kept channels' statistics.
    """
    with torch.no_grad(), masked_norms.kept_channel_statistics(reference):
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


def probe_groups(
    model: nn.Module, example_inputs, analysis: GroupAnalysis, seed: int = 0, *, strict: bool = False
) -> GroupAnalysis:
    """Prune a copy for real and compare it with the masked network; name any failing layer.

    All groups are probed at once (one export); only on failure is each group probed alone, to
    find the groups at fault. Those are left whole (``analysis.skipped`` says why) and the rest
    is probed again; with ``strict``, or when only the combination fails, it raises
    :class:`UnsupportedModelError` naming the layers. Returns the analysis of what can be pruned.
    """
    groups = analysis.groups
    if any(g.tied for g in groups) and export_plan(model, groups) is None:
        layers = ", ".join(map(repr, uncuttable_layers(model, groups)))
        reason = (
            "it removes whole convolution or norm groups, which only prune-env's own export can cut, "
            f"and that export cannot cut layer(s) {layers}; replace them with BatchNorm to prune it"
        )
        if strict:
            tied = ", ".join(repr(g.name) for g in groups if g.tied)
            raise UnsupportedModelError(f"group(s) {tied}: {reason}")
        analysis = analysis.without({g.name: reason for g in groups if g.tied})
        groups = analysis.groups
    plan = export_plan(model, groups)
    keep = random_keep(groups, np.random.default_rng(seed))
    if _agrees(model, example_inputs, groups, keep, plan):
        return analysis
    failing = []
    for group in groups:
        alone = [np.ones(g.width, dtype=bool) for g in groups]
        alone[group.index] = keep[group.index]
        if not _agrees(model, example_inputs, groups, alone, plan):
            failing.append(group)
    if failing and not strict:
        reasons = {
            g.name: f"pruning it (coupled with {', '.join(g.layers)}) gives a network that disagrees with "
            "the masked one or fails to run (a topology Torch-Pruning mis-handles)"
            for g in failing
        }
        return probe_groups(model, example_inputs, analysis.without(reasons), seed, strict=True)
    if not failing:  # only the combination fails: report every group
        failing = list(groups)
    described = "; ".join(f"{g.name!r} (coupled with {', '.join(g.layers)})" for g in failing)
    raise UnsupportedModelError(
        f"structured pruning of layer(s) {described} gives a network that disagrees with the masked "
        "one or fails to run (a topology torch-pruning mis-handles, e.g. concat -> flatten -> "
        "linear). Wrap such layers so they are not pruned, or restructure the model."
    )


def _agrees(model: nn.Module, example_inputs, groups, keep, plan: ExportPlan | None) -> bool:
    """Masked == pruned, for the export the environment makes: the export plan's cut where the
    model has one, else Torch-Pruning (which cannot express tied groups: those stay whole)."""
    try:
        if plan is not None:
            check_export(masked_copy(model, groups, keep), cut_copy(model, plan, keep), example_inputs)
            return True
        untied = [np.ones(g.width, dtype=bool) if g.tied else keep[g.index] for g in groups]
        if not all(k.all() for k in untied):
            check_export(masked_copy(model, groups, untied), prune_copy(model, example_inputs, groups, untied), example_inputs)  # fmt: skip
    except (PruningMismatchError, UnsupportedModelError):
        return False
    return True
