"""PruneProblem: one pruning instance (a trained network, its data, budgets and a scoring
protocol) that scores masks. No MDP: baselines, searches, the pipeline and the benchmark scripts
talk to a problem; :class:`prune_env.PruneEnv` is the thin MDP over one.

Building a problem analyses the network once (its prunable groups, an export plan, a proof that
exports equal the masked network on random masks, per-unit L1 importance, the analytic budget
estimate); scoring a mask then prunes a copy physically, proves it against the masked network,
measures every budget, applies the scoring protocol and returns one :class:`ScoredMask`.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from prune_env.budgets import BudgetCache, CallableBudget, Flops, Params, make_budget_list, make_budgets
from prune_env.limits import LimitDistribution, parse_limits
from prune_env.scored import ScoredMask, ScoringProtocol
from prune_env.surgery.dependency_groups import GroupAnalysis, analyze
from prune_env.surgery.estimate import StructureEstimate
from prune_env.surgery.layers import unit_importance
from prune_env.surgery.masking import (
    Keep,
    apply_masks,
    check_export,
    cut_copy,
    export_plan,
    probe_groups,
    prune_copy,
)
from prune_env.surgery.units import PrunableGroup
from prune_env.zoo import sources
from prune_env.zoo.data import DEFAULT_VAL_SIZE
from prune_env.zoo.training import accuracy, fit, recalibrate_batchnorm, resolve_device, sampled_batches


class PruneProblem:
    """One pruning instance: score masks of one trained network against its budgets.

    Args:
        task: a name from ``prune_env.list_tasks()``, an entry-point task, or your own
            ``FILE.py:FUNCTION`` / ``module:FUNCTION``; ignored when ``model`` is given.
        model: your own trained ``nn.Module`` instead of a task.
        eval_data: with ``model``: ``(inputs, labels)`` tensors or a DataLoader (validation data).
        train_data: with ``model``: training data for ``finetune_steps`` (same forms).
        example_inputs: with ``model``: a batch for tracing; default the first 2 eval inputs.
        budget: "params", "flops", "latency", "ort-latency", a ``Budget``, a callable, or a list.
        budget_limit: a float, or a list with one limit per budget; a ``(low, high)`` range or
            a list of values per budget makes a distribution (:mod:`prune_env.limits`) that
            :meth:`draw_budget_limit` draws from (the env draws once per episode).
        eval_samples, finetune_steps, finetune_batch_size, finetune_lr, bn_recalibration: the
            scoring protocol (:class:`ScoringProtocol`); ``finetune_steps`` and
            ``bn_recalibration`` can be changed between scores (:meth:`set_scoring`).
        data_dir, val_size: where the task's dataset is, and its validation split's size.
        device: "auto" (CUDA where available), "cpu", "cuda", ...
        strict: refuse a model any of whose groups cannot be pruned exactly (by default such
            groups stay whole, with a warning; :attr:`skipped_groups` says why).
        seed: seeds :attr:`rng`, the source of each fine-tune's seed when :meth:`score` is not
            handed a generator.

    Attributes:
        model: the dense network (never mutated), on ``device``, in eval mode.
        groups: the :class:`PrunableGroup` s in forward order.
        budgets, budget_limits: the budget functions and the limit in force for each (every
            :class:`ScoredMask` records the limits it was scored against).
        limit_distributions: what each budget's limit is drawn from (fixed ones draw nothing).
        importance: per group, the L1 magnitude of each unit.
        estimate: the analytic parameter and MAC counts of a partly pruned network.
        last_model, last_masks: the network and keep-arrays of the last :meth:`score` (a
            keep-all mask scored read-only leaves the dense ``model`` itself there: copy it
            before changing it, as ``PruneEnv.export()`` does).
    """

    def __init__(
        self,
        task: str | None = None,
        *,
        model: nn.Module | None = None,
        eval_data=None,
        train_data=None,
        example_inputs=None,
        budget="params",
        budget_limit=0.1,
        eval_samples: int = ScoringProtocol.eval_samples,
        finetune_steps: int = ScoringProtocol.finetune_steps,
        finetune_batch_size: int = ScoringProtocol.finetune_batch_size,
        finetune_lr: float = ScoringProtocol.finetune_lr,
        bn_recalibration: int = ScoringProtocol.bn_recalibration,
        data_dir=None,
        val_size: int = DEFAULT_VAL_SIZE,
        device: str = "auto",
        strict: bool = False,
        seed: int | None = None,
    ):
        if int(eval_samples) < 1:
            raise ValueError(f"eval_samples must be >= 1, got {eval_samples}")
        self.device = resolve_device(device)
        self.budgets = make_budget_list(budget)
        self._several_budgets = isinstance(budget, (list, tuple))
        self.limit_distributions: list[LimitDistribution] = parse_limits(self.budgets, budget_limit)
        # Until a draw, a range's high end (a list's first value) is in force.
        self.budget_limits: list[float] = [
            d.choices[0] if d.choices else d.high for d in self.limit_distributions
        ]  # one per budget, whatever form budget_limit took
        self.finetune_batch_size = int(finetune_batch_size)
        self.finetune_lr = float(finetune_lr)
        self.rng = np.random.default_rng(seed)

        if model is None:
            source = sources.from_task(
                task, eval_samples=int(eval_samples), data_dir=data_dir, val_size=val_size
            )
        else:
            source = sources.from_model(
                model, eval_data=eval_data, eval_samples=int(eval_samples), train_data=train_data,
                example_inputs=example_inputs, name=task,
            )  # fmt: skip
        self.task, self.checkpoint = source.name, source.checkpoint
        self._train_sampler = source.sample_train
        self._recalibration_batches: list = []
        self.finetune_steps = finetune_steps
        self.bn_recalibration = bn_recalibration

        self.model = copy.deepcopy(source.model).to(self.device).eval()
        example = source.example_inputs if example_inputs is None else example_inputs
        self.example_inputs = _to_device(example, self.device)
        self.eval_inputs, self.eval_labels = (
            source.eval_inputs.to(self.device),
            source.eval_labels.to(self.device),
        )

        self.analysis = self._analyse(strict)
        self.groups: list[PrunableGroup] = self.analysis.groups
        self._masked = copy.deepcopy(self.model)  # masks are applied here, to check every export
        self._plan = export_plan(self.model, self.groups)  # None: export with Torch-Pruning
        self._dense_state = {k: v.clone() for k, v in self.model.state_dict().items()}
        self._bind_budgets()
        self.estimate = StructureEstimate(self.analysis, self.model, self.example_inputs)
        self.importance = [unit_importance(self.model, g) for g in self.groups]
        # each group's units by decreasing L1 magnitude (ties: lower index first), sorted once
        self._unit_order = [np.argsort(-imp, kind="stable") for imp in self.importance]
        self.last_model: nn.Module | None = None
        self.last_masks: list[np.ndarray] | None = None

    def _analyse(self, strict: bool) -> GroupAnalysis:
        """The prunable groups, each probed: an export of random masks must equal the masked net."""
        analysis = analyze(self.model, self.example_inputs, strict=strict)
        analysis = probe_groups(self.model, self.example_inputs, analysis, strict=strict)
        if analysis.skipped:
            warnings.warn(
                f"{len(analysis.skipped)} group(s) cannot be pruned exactly and stay whole "
                f"(skipped_groups says why): {', '.join(analysis.skipped)}",
                stacklevel=_user_stacklevel(),
            )
        return analysis

    def _bind_budgets(self) -> None:
        """Bind the budgets (and the params / FLOPs ratios every record reports) to the dense net."""
        self._report = [Params(), Flops()]
        for b in [*self.budgets, *self._report]:
            b.bind(self.model, self.example_inputs)
        self.budget_cache = BudgetCache(self.budgets)
        self._report_cache = BudgetCache(self._report)
        self.estimate_kind = "params" if isinstance(self.budgets[0], Params) else "flops"

    # --- the instance -----------------------------------------------------------------------

    @property
    def num_groups(self) -> int:
        return len(self.groups)

    @property
    def budget_limit(self) -> float | list[float]:
        """The limit in force: a float, or a list when ``budget`` was a list."""
        return list(self.budget_limits) if self._several_budgets else self.budget_limits[0]

    @property
    def draws_limits(self) -> bool:
        """Whether ``budget_limit`` was a range or a list: each episode then draws its limit."""
        return not all(d.fixed for d in self.limit_distributions)

    def set_budget_limit(self, limit) -> None:
        """Put a fixed limit in force (a float, or one per budget), checked as the constructor's;
        every later score is measured against it."""
        self.budget_limits = make_budgets(self.budgets, limit if self._several_budgets else [limit])[1]

    def draw_budget_limit(self, rng: np.random.Generator) -> list[float]:
        """Draw each budget's limit from its distribution and put it in force (a fixed limit
        draws nothing from ``rng``)."""
        self.budget_limits = [d.draw(rng) for d in self.limit_distributions]
        return list(self.budget_limits)

    @property
    def max_units(self) -> int:
        """The widest group's number of units."""
        return self.analysis.max_units

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    @property
    def skipped_groups(self) -> dict[str, str]:
        """Groups left whole because they cannot be pruned exactly: root layer -> the reason."""
        return dict(self.analysis.skipped)

    # --- the scoring protocol ---------------------------------------------------------------

    @property
    def protocol(self) -> ScoringProtocol:
        """How the next :meth:`score` scores a mask."""
        return ScoringProtocol(
            eval_samples=len(self.eval_labels), finetune_steps=self.finetune_steps,
            finetune_batch_size=self.finetune_batch_size, finetune_lr=self.finetune_lr,
            bn_recalibration=self.bn_recalibration,
        )  # fmt: skip

    @property
    def finetune_steps(self) -> int:
        return self._finetune_steps

    @finetune_steps.setter
    def finetune_steps(self, steps: int) -> None:
        self._finetune_steps = self._training_count("finetune_steps", steps)

    @property
    def bn_recalibration(self) -> int:
        return self._bn_recalibration

    @bn_recalibration.setter
    def bn_recalibration(self, batches: int) -> None:
        batches = self._training_count("bn_recalibration", batches)
        if batches > len(self._recalibration_batches):
            # The same batches for every candidate (one seeded draw; the first N are the same for
            # any count), so scores stay comparable and replayable.
            rng = np.random.default_rng(0)
            self._recalibration_batches = [
                self._train_sampler(rng, self.finetune_batch_size) for _ in range(batches)
            ]
        self._bn_recalibration = batches

    def set_scoring(self, *, finetune_steps: int | None = None, bn_recalibration: int | None = None) -> None:
        """Change the scoring protocol between scores (the paper's 0 / 32 / 128 schedule)."""
        if finetune_steps is not None:
            self.finetune_steps = finetune_steps
        if bn_recalibration is not None:
            self.bn_recalibration = bn_recalibration

    def _training_count(self, name: str, value: int) -> int:
        """A protocol setting that counts training steps or batches: >= 0, and > 0 needs data."""
        value = int(value)
        if value < 0:
            raise ValueError(f"{name} must be >= 0 (0 turns it off), got {value}")
        if value > 0 and self._train_sampler is None:
            raise ValueError(f"{name} > 0 needs training data: pass train_data=... with a custom model")
        return value

    def training_batch(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of training data (the fine-tune's source), for importance criteria and searches."""
        if self._train_sampler is None:
            raise ValueError("this problem has no training data: pass train_data=... with a custom model")
        return self._train_sampler(rng, batch_size)

    # --- masks ------------------------------------------------------------------------------

    def keep_largest(self, group: PrunableGroup, ratio: float) -> np.ndarray:
        """The ``round(ratio * width)`` units of ``group`` of largest L1 magnitude (at least one)."""
        order = self._unit_order[group.index]
        kept = np.zeros(group.width, dtype=bool)
        kept[order[: max(int(round(ratio * group.width)), 1)]] = True
        return kept

    def keep_from_ratios(self, ratios: Sequence[float]) -> list[np.ndarray]:
        """One keep-array per group from one keep-fraction per group, exactly as ratio actions
        are read: the ``round(ratio * width)`` units of largest L1 magnitude, at least one."""
        if len(ratios) != self.num_groups:
            raise ValueError(f"expected {self.num_groups} ratios (one per group), got {len(ratios)}")
        return [self.keep_largest(g, float(r)) for g, r in zip(self.groups, ratios)]

    def masks_to_dict(self, keep: Keep) -> dict[str, list[int]]:
        """Group name -> kept unit indices (the form of ``ScoredMask.masks`` and masks.json)."""
        return {g.name: np.flatnonzero(keep[g.index]).tolist() for g in self.groups}

    def parse_masks(self, masks) -> list[np.ndarray]:
        """One boolean keep-array per group from group name -> kept unit indices (a group left
        out keeps every unit) or from one boolean array per group; raises ``ValueError``."""
        return parse_masks(masks, self.groups)

    def estimated_budget(self, keep: Keep) -> float:
        """The analytic estimate of the first budget for ``keep``, without pruning anything:
        exact for parameters; the MAC ratio stands in for FLOPs, latency and callables."""
        params, flops = self.estimate.ratios(keep)
        return params if self.estimate_kind == "params" else flops

    def fits_estimate(self, keep: Keep) -> bool:
        """Whether :meth:`estimated_budget` of ``keep`` is within the first budget's limit: the
        one check behind AMC's action bound, the wrappers' clipping and the searches' scaling."""
        return self.estimated_budget(keep) <= self.budget_limits[0]

    # --- scoring ----------------------------------------------------------------------------

    def score(
        self,
        masks,
        *,
        source: str = "evaluated",
        rng: np.random.Generator | None = None,
        seed: int | None = None,
    ) -> ScoredMask:
        """Prune, measure, fine-tune per the protocol and score one mask.

        Args:
            masks: group name -> kept unit indices, or one boolean keep-array per group.
            source: recorded in the result (the name of the method that chose the masks).
            rng: draws the fine-tune's seed (default :attr:`rng`); the env hands its ``np_random``.
            seed: the fine-tune's seed itself, instead of one drawn from ``rng`` (a tabulated
                cell's score is replayed with its cell's seed).
        """
        keep = self.parse_masks(masks)
        widths = [int(k.sum()) for k in keep]
        # A protocol without fine-tune or recalibration, and built-in budgets, only read the
        # network: a keep-all mask then scores the dense network itself (last_model is then the
        # dense network; PruneEnv.export() hands out copies). A user's callable budget always
        # gets a copy.
        read_only = (
            self.finetune_steps == 0
            and self.bn_recalibration == 0
            and not any(isinstance(b, CallableBudget) for b in self.budgets)
        )
        pruned = self._prune(keep, share_dense=read_only)
        params_ratio, flops_ratio = self._report_cache.get(widths, pruned)
        costs = self.budget_cache.get(widths, pruned)
        if self.finetune_steps > 0:
            if seed is None:
                seed = int((self.rng if rng is None else rng).integers(2**31))
            self._finetune(pruned, int(seed))
        if self.bn_recalibration > 0:
            recalibrate_batchnorm(pruned, self._recalibration_batches[: self.bn_recalibration])
        acc = accuracy(pruned, self.eval_inputs, self.eval_labels)
        self.last_model, self.last_masks = pruned, keep
        return ScoredMask(
            masks=self.masks_to_dict(keep),
            widths={g.name: w for g, w in zip(self.groups, widths)},
            accuracy=float(acc),
            costs=[float(c) for c in costs],
            budgets={b.name: float(c) for b, c in zip(self.budgets, costs)},
            limits=list(self.budget_limits),
            params_ratio=float(params_ratio),
            flops_ratio=float(flops_ratio),
            satisfied=bool(all(c <= lim for c, lim in zip(costs, self.budget_limits))),
            protocol=self.protocol,
            source=source,
        )

    def score_ratios(self, ratios: Sequence[float], *, source: str = "evaluated", rng=None) -> ScoredMask:
        """:meth:`score` of :meth:`keep_from_ratios` (one keep-fraction per group)."""
        return self.score(self.keep_from_ratios(ratios), source=source, rng=rng)

    def _finetune(self, pruned: nn.Module, seed: int) -> None:
        """The protocol's ``finetune_steps`` Adam steps on training batches drawn with ``seed``."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            batches = sampled_batches(
                self._train_sampler,
                self.finetune_steps,
                np.random.default_rng(seed),
                self.finetune_batch_size,
            )
            fit(
                pruned,
                batches,
                torch.optim.Adam(pruned.parameters(), lr=self.finetune_lr),
                device=self.device,
            )

    def export(self, masks) -> nn.Module:
        """The physically smaller network for ``masks`` (group name -> kept unit indices, or one
        boolean keep-array per group), pruned from the dense weights, in eval mode."""
        return self._prune(self.parse_masks(masks))

    def _prune(self, keep: Keep, *, share_dense: bool = False) -> nn.Module:
        """Physically prune a copy of the dense network and prove it equals the masked one.

        The copy is cut by the export plan made at construction (no re-tracing), or by
        Torch-Pruning where the plan does not apply; either way it is checked against the
        masked network. With every unit kept the result is the dense network: a copy, or, with
        ``share_dense`` (a caller that only reads it), the dense network itself."""
        if all(k.all() for k in keep):
            return self.model if share_dense else copy.deepcopy(self.model).eval()
        self.restore_dense()
        apply_masks(self._masked, self.groups, keep)
        if self._plan is not None:
            pruned = cut_copy(self.model, self._plan, keep)
        else:
            pruned = prune_copy(self.model, self.example_inputs, self.groups, keep)
        check_export(self._masked, pruned, self.example_inputs)
        return pruned

    def restore_dense(self) -> None:
        """Reset the masked twin to the dense weights (masks of an earlier score removed)."""
        with torch.no_grad():
            for name, tensor in self._masked.state_dict().items():
                tensor.copy_(self._dense_state[name])

    def __repr__(self) -> str:
        budgets = ", ".join(repr(b) for b in self.budgets)
        return (
            f"PruneProblem(task={self.task!r}, groups={self.num_groups}, budgets=[{budgets}], "
            f"limit={self.budget_limit})"
        )


def parse_masks(masks, groups) -> list[np.ndarray]:
    """One boolean keep-array per group (anything with ``name`` and ``width``) from group name ->
    kept unit indices (a group left out keeps every unit) or from one boolean array per group;
    raises ``ValueError``. PruneProblem's and TabularProblem's masks are read here."""
    names = [g.name for g in groups]
    if isinstance(masks, Mapping):
        unknown = set(masks) - set(names)
        if unknown:
            raise ValueError(f"unknown group names {sorted(unknown)}; groups are {names}")
        keep = []
        for g in groups:
            kept = np.zeros(g.width, dtype=bool)
            idx = np.asarray(masks.get(g.name, range(g.width)), dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= g.width):
                raise ValueError(
                    f"kept indices of group {g.name!r} must be in [0, {g.width}), got {idx.tolist()}"
                )
            kept[idx] = True
            keep.append(kept)
    else:
        keep = [np.asarray(k, dtype=bool) for k in masks]
        if len(keep) != len(groups) or any(k.shape != (g.width,) for k, g in zip(keep, groups)):
            raise ValueError(
                f"masks must be one boolean array per group with widths {[g.width for g in groups]}"
            )
    for k, g in zip(keep, groups):
        if not k.any():
            raise ValueError(f"group {g.name!r} must keep at least one unit")
    return keep


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning raised here at the first caller outside
    prune_env (the user's ``PruneProblem(...)`` or ``PruneEnv(...)`` line)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("prune_env"):
        frame, level = frame.f_back, level + 1
    return level


def _to_device(inputs, device):
    if isinstance(inputs, (tuple, list)):
        return tuple(t.to(device) for t in inputs)
    return inputs.to(device)
