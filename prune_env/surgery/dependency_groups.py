"""Prunable units of a network: coupled groups of layers from the dependency graph.

Torch-Pruning's dependency graph (DepGraph, Fang et al. 2023) tells which parameter slices must
go together: a conv's output channels, its BatchNorm, the next layer's input channels, every
branch of a residual add. Each such group is one step of an episode, and its units are the
root layer's output channels (filters or neurons). This module turns the graph into plain,
picklable descriptions (:mod:`prune_env.surgery.units`: module names and index arrays), so that masking
and budget estimates never touch the graph again; it ties the units that grouped convolutions
and GroupNorm couple, and adds the groups :mod:`prune_env.surgery.architecture_groups` builds from the
architecture (attention heads, Swin and ShuffleNetV2 streams) in place of the ones the trace
gets wrong or cannot finish.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch_pruning as tp
from torch import nn
from torch_pruning.dependency import index_mapping

import prune_env.surgery.analysis_bounds as analysis_bounds
from prune_env.errors import AnalysisTooCostlyError, UnsupportedModelError
from prune_env.surgery.analysis_bounds import bounded_group_search
from prune_env.surgery.architecture_groups import (
    ATTENTION_TYPES,
    UnionFind,
    head_groups,
    shufflenet_stream_groups,
    swin_stream_groups,
    unsupported_attention,
)
from prune_env.surgery.layers import PRUNABLE_TYPES, forward_with_hook, is_grouped_conv
from prune_env.surgery.units import PrunableGroup, UnitSlice

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)


@dataclass
class LayerInfo:
    """What the analytic budget estimate needs of one layer with parameters."""

    name: str
    param_shapes: dict[str, tuple[int, ...]]
    macs: float  # dense multiply-accumulates for one example (0 for non conv/linear)
    out_size: int | None
    in_size: int | None
    conv_groups: int = 1  # a convolution's ``groups``: its weight holds in_size / conv_groups inputs


@dataclass
class GroupAnalysis:
    """Everything the environment needs to know about a model's prunable structure."""

    groups: list[PrunableGroup]
    layers: dict[str, LayerInfo]
    classifier: str
    execution_order: list[str]
    # groups left whole because they cannot be pruned exactly: root layer -> the reason
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def max_units(self) -> int:
        return max(g.width for g in self.groups)

    def without(self, reasons: dict[str, str]) -> GroupAnalysis:
        """The analysis with the named groups left whole (re-indexed in forward order)."""
        kept = [g for g in self.groups if g.name not in reasons]
        if not kept:
            raise UnsupportedModelError(_nothing_left({**self.skipped, **reasons}))
        for i, group in enumerate(kept):
            group.index = i
        return GroupAnalysis(
            kept, self.layers, self.classifier, self.execution_order, {**self.skipped, **reasons}
        )


def _nothing_left(skipped: dict[str, str]) -> str:
    reasons = "; ".join(f"{name!r}: {why}" for name, why in skipped.items())
    return f"no group of the model can be pruned exactly ({reasons})"


def _trace_layers(model: nn.Module, example_inputs) -> tuple[list[str], dict[str, float]]:
    """Execution order of conv, linear and multi-head attention layers, and the conv and linear
    layers' dense MACs per example."""
    names = {m: n for n, m in model.named_modules()}
    order: list[str] = []
    macs: dict[str, float] = {}

    def hook(module, inputs, output):
        name = names[module]
        if name in macs:
            return None
        order.append(name)
        if isinstance(module, ATTENTION_TYPES):  # its order only: estimates count conv and linear
            macs[name] = 0.0
        else:
            batch = output.shape[0] if output.dim() > 1 else 1
            if isinstance(module, nn.Linear):
                macs[name] = output.numel() / batch * module.in_features
            else:
                kernel = int(np.prod(module.kernel_size))
                macs[name] = output.numel() / batch * module.in_channels // module.groups * kernel
        return None

    traced = [m for m in model.modules() if isinstance(m, (*PRUNABLE_TYPES, *ATTENTION_TYPES))]
    forward_with_hook(model, example_inputs, traced, hook)
    return order, macs


# Torch-Pruning's passes that map channel indices through concat, split, reshape, unbind, expand
# and slice nodes after tracing.
_INDEX_MAPPING_UPDATERS = (
    "update_concat_index_mapping", "update_split_index_mapping", "update_reshape_index_mapping",
    "update_unbind_index_mapping", "update_expand_index_mapping", "update_slice_index_mapping",
)  # fmt: skip


@contextlib.contextmanager
def tolerant_index_mapping():
    """Torch-Pruning 1.6 raises on some nodes it cannot read (ShuffleNetV2's channel shuffle:
    ZeroDivisionError; Swin-S/B: TypeError), which fails the whole graph. Within the block a
    node whose mapping cannot be computed keeps the default one: groups through it may then be
    wrong, and the probe (masked == pruned) or their own search leaves those whole. (Each
    ``get_pruning_group`` runs these passes again, so searches and exports use it too.)"""
    originals = {n: getattr(index_mapping, n) for n in _INDEX_MAPPING_UPDATERS if hasattr(index_mapping, n)}

    def tolerant(update):
        def guarded(graph, node):
            try:
                return update(graph, node)
            except Exception:
                return None

        return guarded

    for name, update in originals.items():
        setattr(index_mapping, name, tolerant(update))
    try:
        yield
    finally:
        for name, update in originals.items():
            setattr(index_mapping, name, update)


def build_dependency_graph(model: nn.Module, example_inputs) -> tp.DependencyGraph:
    try:
        with tolerant_index_mapping(), warnings.catch_warnings():
            # its guess of the bare parameters' dimension is checked slice by slice (_bare_parameter_slice)
            warnings.filterwarnings("ignore", message="Unwrapped parameters detected")
            return tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs)
    except Exception as exc:
        raise UnsupportedModelError(
            f"could not trace the model's dependency graph with torch-pruning: {type(exc).__name__}: {exc}"
        ) from exc


def _all_groups(
    graph: tp.DependencyGraph, names: dict, ignored: nn.Module, strict: bool = False
) -> tuple[list, dict[str, str]]:
    """Torch-Pruning's groups (as ``DependencyGraph.get_all_groups`` finds them: one per conv or
    linear output not already in a group, the classifier ignored), each search bounded on its
    own (:mod:`prune_env.surgery.analysis_bounds`): a group whose search passes the bound, or fails, is
    left whole with the reason, the others are still found. Past the bound on total time it
    raises."""
    found, left_whole, visited = [], {}, set()
    ignored_layers = [ignored, *graph.IGNORED_LAYERS_IN_TRACING]
    start = time.monotonic()
    for module in list(graph.module2node):
        if (
            module in visited
            or any(module is i for i in ignored_layers)
            or not isinstance(module, PRUNABLE_TYPES)
        ):
            continue
        pruner = graph.get_pruner_of_module(module)
        if pruner is None or pruner.get_out_channels(module) is None:
            continue
        if time.monotonic() - start > analysis_bounds.MAX_SECONDS:
            raise analysis_bounds.too_costly(
                "seconds",
                f"finding the prunable groups took over {analysis_bounds.MAX_SECONDS:.0f} s; give smaller "
                "example_inputs (a lower resolution the model accepts, e.g. 64x64), or prune a part of the model",
            )
        try:
            with bounded_group_search(started=start), tolerant_index_mapping():
                group = graph.get_pruning_group(
                    module, pruner.prune_out_channels, list(range(pruner.get_out_channels(module)))
                )
        except AnalysisTooCostlyError as exc:
            if exc.bound != "indices" or strict:  # out of time: the model as a whole is too costly
                raise
            left_whole[names[module]] = str(exc)
            continue
        except Exception as exc:  # Torch-Pruning lost its way in this group only
            reason = f"Torch-Pruning could not follow the channels of the group of {names[module]!r}: {type(exc).__name__}: {exc}"
            if strict:
                raise UnsupportedModelError(reason) from exc
            left_whole[names[module]] = reason
            continue
        prunable = True
        for dep, _ in group:
            if graph.is_out_channel_pruning_fn(dep.handler):
                visited.add(dep.target.module)
                prunable = prunable and not any(dep.target.module is i for i in ignored_layers)
        if prunable:
            found.append(group)
    return found, left_whole


def _side(graph: tp.DependencyGraph, handler) -> str:
    return "out" if graph.is_out_channel_pruning_fn(handler) else "in"


def analyze(model: nn.Module, example_inputs, *, strict: bool = False) -> GroupAnalysis:
    """Find the prunable groups of ``model`` in forward order.

    The classifier (the last conv or linear layer to run) keeps its outputs. A group that
    touches a layer whose slices cannot be masked exactly (attention with ``kdim``/``vdim``, a
    LayerNorm over several dimensions, a search past its bound...) is left whole and recorded in
    ``skipped`` with the reason; with ``strict`` it raises :class:`UnsupportedModelError`
    instead. No group left raises in either case.
    """
    was_training = model.training
    model.eval()
    try:
        order, macs = _trace_layers(model, example_inputs)
        modules = dict(model.named_modules())
        computing = [n for n in order if isinstance(modules[n], PRUNABLE_TYPES)]
        if not computing:
            raise UnsupportedModelError("the model runs no Conv or Linear layer: nothing to prune")
        names = {m: n for n, m in modules.items()}
        param_names = {id(p): n for n, p in model.named_parameters()}
        classifier = computing[-1]
        graph = build_dependency_graph(model, example_inputs)
        raw_groups, unfollowed = _all_groups(graph, names, ignored=modules[classifier], strict=strict)
    finally:
        model.train(was_training)

    layers: dict[str, LayerInfo] = {}
    groups: list[PrunableGroup] = []
    skipped: dict[str, str] = dict(unfollowed)
    for raw in raw_groups:
        root_name = names[raw[0].dep.target.module]
        try:
            group = _group_from(raw, graph, names, param_names, macs, order, layers)
        except UnsupportedModelError as exc:
            if strict:
                raise
            skipped[root_name] = str(exc)
            continue
        if group is not None:
            groups.append(group)
    groups, refused = tie_grouped_convolutions(groups, modules, order)
    heads, refused_heads = head_groups({n: modules[n] for n in order})
    refused.update(refused_heads)
    shuffled, whole_streams = shufflenet_stream_groups(model)
    structural = heads + swin_stream_groups(model) + shuffled
    owned = {(s.module, s.side): g.name for g in structural for s in g.slices}
    # Torch-Pruning's groups over the same slices, and its failed searches from them, are
    # replaced by the structural groups (not left whole)
    groups = [g for g in groups if not any((s.module, s.side) in owned for s in g.slices)]
    skipped = {
        root: whole_streams.get(root, why) for root, why in skipped.items() if (root, "out") not in owned
    }
    if refused and strict:
        raise UnsupportedModelError(next(iter(refused.values())))
    skipped.update(refused)
    groups += structural
    # Layers outside every group (the classifier among them) still count in estimates.
    for name in order:
        layers.setdefault(name, _layer_info(name, modules[name], macs.get(name, 0.0)))
    params = dict(model.named_parameters())
    for group in structural:  # also layers used as functions inside attention, and bias tables
        for s in group.slices:
            info = (
                _parameter_info(s.module, params[s.module], s.dim)
                if s.bare
                else _layer_info(s.module, modules[s.module], 0.0)
            )
            layers.setdefault(s.module, info)
    if not groups and not skipped:
        raise UnsupportedModelError("the model has no prunable group besides its classifier")
    if not groups:
        raise UnsupportedModelError(_nothing_left(skipped))
    groups.sort(key=lambda g: min(order.index(n) for n in g.layers))
    total_params = sum(p.numel() for p in model.parameters())
    total_macs = sum(macs.values())
    for i, group in enumerate(groups):
        group.index = i
        group.params_share = _touched_params(group, layers) / max(total_params, 1)
        group.flops_share = sum(layers[n].macs for n in {s.module for s in group.slices}) / max(
            total_macs, 1.0
        )
    return GroupAnalysis(groups, layers, classifier, order, skipped)


def _group_from(raw, graph, names, param_names, macs, order, layers) -> PrunableGroup | None:
    """One Torch-Pruning group as a :class:`PrunableGroup` (``None`` when its root is not a
    conv or linear layer); raises :class:`UnsupportedModelError` naming the layer at fault."""
    root = raw[0].dep.target.module
    root_name = names[root]
    slices, producers = [], []
    for item in raw:
        module = item.dep.target.module
        if None in item.root_idxs:
            where = param_names.get(id(module)) or names.get(module, type(module).__name__)
            raise UnsupportedModelError(
                f"torch-pruning lost the unit mapping of {where!r} in the group of {root_name!r}"
            )
        positions, units = np.asarray(item.idxs, dtype=np.int64), np.asarray(item.root_idxs, dtype=np.int64)
        if isinstance(module, nn.Parameter):
            bare = _bare_parameter_slice(module, item.dep.target, param_names, root_name, positions, units)
            if bare is not None:
                slices.append(bare)
                layers.setdefault(bare.module, _parameter_info(bare.module, module, bare.dim))
            continue
        if isinstance(module, nn.LayerNorm):  # with or without parameters, it mixes the channels
            _check_layer_norm(module, names[module], root_name)
        if module not in names or not any(True for _ in module.parameters(recurse=False)):
            continue  # torch-pruning's reshape / concat / element-wise ops: nothing to mask
        name = names[module]
        if isinstance(module, nn.MultiheadAttention):  # a stream around it: input columns, output rows
            reason = unsupported_attention(module)
            if reason:
                raise UnsupportedModelError(
                    f"layer {name!r} (MultiheadAttention) reads the channels of the group of {root_name!r} "
                    f"and {reason}"
                )
            slices += [
                UnitSlice(name, "in", positions, units),
                UnitSlice(f"{name}.out_proj", "out", positions, units),
            ]
            producers.append(name)
            layers.setdefault(name, _layer_info(name, module, 0.0))
            layers.setdefault(f"{name}.out_proj", _layer_info(f"{name}.out_proj", module.out_proj, 0.0))
            continue
        if not isinstance(module, PRUNABLE_TYPES + NORM_TYPES):
            supported = ", ".join(t.__name__ for t in PRUNABLE_TYPES + NORM_TYPES)
            raise UnsupportedModelError(
                f"layer {name!r} ({type(module).__name__}) is coupled to the group of {root_name!r}; "
                f"PruneEnv prunes the slices of {supported} and of bare parameters only"
            )
        side = "out" if isinstance(module, NORM_TYPES) else _side(graph, item.dep.handler)
        slices.append(UnitSlice(name, side, positions, units))
        if side == "out" and isinstance(module, PRUNABLE_TYPES):
            producers.append(name)
        layers.setdefault(name, _layer_info(name, module, macs.get(name, 0.0)))
    if not isinstance(root, PRUNABLE_TYPES):
        return None
    is_conv = isinstance(root, nn.modules.conv._ConvNd)
    return PrunableGroup(
        index=-1,
        name=root_name,
        kind="conv" if is_conv else "linear",
        width=int(root.out_channels if is_conv else root.out_features),
        in_width=int(root.in_channels if is_conv else root.in_features),
        kernel_size=int(np.prod(root.kernel_size)) if is_conv else 1,
        stride=int(np.prod(root.stride)) if is_conv else 1,
        layers=sorted(producers, key=order.index),
        slices=slices,
    )


def _check_layer_norm(norm: nn.LayerNorm, name: str, root_name: str) -> None:
    """A LayerNorm inside a group is masked by computing its statistics over the kept channels
    only (:mod:`prune_env.surgery.masked_norms`), which needs one normalized dimension and an affine
    weight to recognise it by."""
    if len(norm.normalized_shape) != 1 or norm.weight is None:
        raise UnsupportedModelError(
            f"layer {name!r} (LayerNorm over {tuple(norm.normalized_shape)}"
            f"{', no affine weight' if norm.weight is None else ''}) normalizes the channels of the group of "
            f"{root_name!r}: prune-env masks a LayerNorm over one dimension with an affine weight only"
        )


def _bare_parameter_slice(param, node, param_names, root_name, positions, units) -> UnitSlice | None:
    """The slice of a parameter no layer wraps (a layer scale, a class token, a position
    embedding), along the dimension Torch-Pruning prunes. ``None`` when that dimension does not
    hold the group's channels: Torch-Pruning guesses the dimension (the last one larger than 1)
    and also couples a table added by broadcasting, such as Swin's per-head relative position
    bias, which has no channel of the group; it is left out, and the probe proves the group's
    export without it."""
    name = param_names.get(id(param))
    dim = getattr(node, "pruning_dim", None)
    if name is None or dim is None:
        raise UnsupportedModelError(
            f"group rooted at {root_name!r} prunes a bare parameter of shape {tuple(param.shape)} that "
            "prune-env cannot locate in the model"
        )
    dim = int(dim) % param.dim()
    if param.shape[dim] != len(np.unique(positions)) or positions.max(initial=-1) >= param.shape[dim]:
        return None
    return UnitSlice(name, "out", positions, units, dim=dim)


def _parameter_info(name: str, param: nn.Parameter, dim: int) -> LayerInfo:
    """A bare parameter as a layer of its own for the estimate: its cut dimension first."""
    shape = list(param.shape)
    shape.insert(0, shape.pop(dim))
    return LayerInfo(name, {"": tuple(shape)}, 0.0, shape[0], None)


def channel_groups(module: nn.Module) -> tuple[int, int] | None:
    """(inputs, outputs) per group of a layer that computes each group of channels from its own
    group only and must keep whole groups: a grouped convolution (not depthwise, which
    Torch-Pruning couples channel by channel) or a GroupNorm (its statistics run over a group,
    and its ``num_groups`` shrinks with it, which Torch-Pruning 1.6 does not do). ``None`` for
    every other layer."""
    if is_grouped_conv(module) and not module.groups == module.in_channels == module.out_channels:
        return module.in_channels // module.groups, module.out_channels // module.groups
    if isinstance(module, nn.GroupNorm):  # also one channel per group: num_groups must shrink
        per = module.num_channels // module.num_groups
        return per, per
    return None


def tie_grouped_convolutions(
    groups: list[PrunableGroup], modules: dict[str, nn.Module], order: list[str]
) -> tuple[list[PrunableGroup], dict[str, str]]:
    """Merge the units a grouped convolution (or a GroupNorm) ties together.

    A convolution with ``g`` groups computes output group ``k`` from input group ``k`` only,
    and its weight has the same number of inputs for every group, so single channels cannot be
    removed; whole convolution groups can. Every unit whose channels reach input or output group
    ``k`` of such a layer therefore becomes one unit (the groups that own them are merged into
    one step): removing it removes the convolution group, its inputs and its outputs. Depthwise
    convolutions need nothing here (Torch-Pruning already couples their inputs with their
    outputs, one channel per group). A GroupNorm ties the channels of each of its groups the
    same way: a masked channel would still count in its group's statistics, a removed group
    does not. Returns the groups, and the groups left whole (root -> reason): those that reach
    a grouped convolution whose inputs no group owns.
    """
    ties = UnionFind()
    tied_layers: dict[str, list[tuple[int, UnitSlice]]] = {}
    for gi, group in enumerate(groups):
        for s in group.slices:
            if channel_groups(modules.get(s.module)) is not None:
                tied_layers.setdefault(s.module, []).append((gi, s))
    if not tied_layers:
        return groups, {}
    refused: dict[str, str] = {}
    for name, items in tied_layers.items():
        conv = modules[name]
        if isinstance(conv, nn.GroupNorm):
            continue
        reached = np.zeros(conv.in_channels, dtype=bool)
        for _, s in items:
            if s.side == "in":
                reached[s.positions] = True
        if not reached.all():
            for gi, _ in items:
                refused[groups[gi].name] = (
                    f"layer {name!r} is a grouped convolution ({conv.groups} groups) reading channels no "
                    "prunable group owns (the network input, or a layer kept whole), so none of its "
                    "convolution groups can be removed; give it groups=1 to prune it"
                )
    if refused:
        kept, more = tie_grouped_convolutions([g for g in groups if g.name not in refused], modules, order)
        return kept, {**refused, **more}
    touched = {gi for items in tied_layers.values() for gi, _ in items}
    for name, items in tied_layers.items():
        conv = modules[name]
        per_in, per_out = channel_groups(conv)
        for gi, s in items:
            for k, unit in zip(s.positions // (per_in if s.side == "in" else per_out), s.units):
                ties.union((gi, int(unit)), ("channel-group", name, int(k)))
    # groups sharing a tie are merged; inside, a unit is a set of tied (group, unit) pairs
    merged = UnionFind()
    owner: dict = {}
    for gi, group in enumerate(groups):
        merged.find(gi)
        for unit in range(group.width):
            root = ties.find((gi, unit))
            merged.union(gi, owner.setdefault(root, gi))
    members: dict[int, list[int]] = {}
    for gi in range(len(groups)):
        members.setdefault(merged.find(gi), []).append(gi)
    result = []
    for indices in members.values():
        indices.sort(key=lambda gi: min(order.index(n) for n in groups[gi].layers))
        ids: dict = {}
        for gi in indices:
            for unit in range(groups[gi].width):
                ids.setdefault(ties.find((gi, unit)), len(ids))
        lead = groups[indices[0]]
        if len(indices) == 1 and indices[0] not in touched:
            result.append(lead)
            continue
        slices = [
            UnitSlice(
                s.module,
                s.side,
                s.positions,
                np.array([ids[ties.find((gi, int(u)))] for u in s.units], dtype=np.int64),
            )
            for gi in indices
            for s in groups[gi].slices
        ]
        layers = sorted({n for gi in indices for n in groups[gi].layers}, key=order.index)
        result.append(
            PrunableGroup(index=-1, name=lead.name, kind=lead.kind, width=len(ids), in_width=lead.in_width,
                          kernel_size=lead.kernel_size, stride=lead.stride, layers=layers, slices=slices, tied=True)
        )  # fmt: skip
    return result, {}


def _layer_info(name: str, module: nn.Module, macs: float) -> LayerInfo:
    if isinstance(module, nn.modules.conv._ConvNd):
        out_size, in_size = module.out_channels, module.in_channels
    elif isinstance(module, nn.Linear):
        out_size, in_size = module.out_features, module.in_features
    else:
        out_size, in_size = getattr(module, "num_features", None), None
    shapes = {k: tuple(p.shape) for k, p in module.named_parameters(recurse=False)}
    return LayerInfo(name, shapes, float(macs), out_size, in_size, getattr(module, "groups", 1))


def _touched_params(group: PrunableGroup, layers: dict[str, LayerInfo]) -> int:
    """Parameters that live in this group's slices (whole rows / columns of each layer)."""
    total = 0
    for s in group.slices:
        info = layers[s.module]
        for shape in info.param_shapes.values():
            if s.side == "out":
                total += len(s.positions) * int(np.prod(shape[1:]))
            elif len(shape) > 1 and info.conv_groups == 1:  # a grouped conv loses rows, counted out
                total += len(s.positions) * shape[0] * int(np.prod(shape[2:]))
    return total
