"""PruneEnv: structured pruning of a trained network as a constrained MDP."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from torch import nn

from prune_env.budgets import BudgetCache, CallableBudget, Flops, Params, make_budgets
from prune_env.errors import InvalidActionError
from prune_env.groups import GroupAnalysis, analyze, unit_importance
from prune_env.masking import apply_masks, check_export, cut_copy, export_plan, probe_groups, prune_copy
from prune_env.scored import ScoredMask, ScoringProtocol
from prune_env.structure import StructureEstimate
from prune_env.zoo import sources
from prune_env.zoo.data import DEFAULT_VAL_SIZE
from prune_env.zoo.training import accuracy, fit, recalibrate_batchnorm, resolve_device, sampled_batches

DESCRIPTOR_NAMES = (
    "group_index",
    "is_conv",
    "is_linear",
    "is_coupled",
    "is_tied",
    "width",
    "in_width",
    "kernel_size",
    "stride",
    "params_share",
    "flops_share",
    "budget_used",
    "budget_limit",
    "budget_remaining",
    "progress",
)


class PruneEnv(gym.Env):
    """
    ## Description
    An agent prunes a trained network, one group of coupled layers per step, in forward order.
    A *group* is what Torch-Pruning's dependency graph says must be pruned together: a conv or
    linear layer with its BatchNorm and the next layer's inputs, or every layer writing into one
    residual stream. A group's *units* are its root layer's output channels or neurons. Other
    kinds of unit: a whole convolution or norm group where a grouped convolution or a GroupNorm
    ties channels (``is_tied``), and an attention head of an ``nn.MultiheadAttention`` or of
    torchvision's Swin window attention (its query, key, value and output slices, with its
    position-bias entries; ``is_conv = is_linear = 0``, ``is_tied = 1``). LayerNorms,
    layer scales, class tokens and position embeddings are cut with the channels they carry
    (a masked LayerNorm normalizes over the kept channels, as the pruned one does). The
    classifier's outputs are never pruned. After the last group, the pruned network is scored
    on held-out validation images (the reward) and measured by the budget functions (the cost).

    What is scored is the network you would ship: each episode's masks are applied by
    *physically* removing the pruned units (Torch-Pruning), and the smaller network is checked
    against the masked one (outputs within 1e-4) before it is used.

    ## Action Space
    - ``action_mode="mask"``: ``MultiBinary(max_units)``, 1 = keep the unit. Only the first
      ``width`` entries of the current group count; the rest are ignored. ``action_masks()``
      returns the ``2 * max_units`` boolean mask sb3-contrib's MaskablePPO expects (entries past
      the width may only be 0).
    - ``action_mode="ratio"``: ``Box(0, 1, (1,))``, the fraction of units kept; the
      ``round(ratio * width)`` units of largest L1 magnitude are kept (AMC-like).

    At least one unit of every group is always kept: an all-zero mask keeps the unit of largest
    L1 magnitude, and a ratio that rounds to zero keeps one unit. ``info["forced_keep"]`` is True
    on the step where this happened.

    ## Observation Space
    ``Box(-1, 1, (15 + max_units,), float32)``:

    | index | name | meaning |
    |-------|------|---------|
    | 0 | group_index | step / (number of groups - 1) |
    | 1 | is_conv | 1 if the group's root is a convolution |
    | 2 | is_linear | 1 if the group's root is a linear layer (0 for both: attention heads) |
    | 3 | is_coupled | 1 if several layers write the group's units (a residual stream) |
    | 4 | is_tied | 1 if a unit is several tied slices: a whole convolution or norm group (a grouped convolution or a GroupNorm runs through the group), or an attention head (``group.tied``) |
    | 5 | width | units of the group / max_units |
    | 6 | in_width | input channels of the root / largest input width of any group |
    | 7 | kernel_size | kernel area of the root / largest kernel area (1 for linear) |
    | 8 | stride | stride of the root / largest stride |
    | 9 | params_share | share of dense parameters in the group's slices |
    | 10 | flops_share | share of dense MACs of the layers the group touches |
    | 11 | budget_used | estimated pruned/dense ratio of the first budget with the groups decided so far pruned and the rest dense (FLOPs ratio stands in for latency and callables) |
    | 12 | budget_limit | the first budget's limit (1 for callable budgets) |
    | 13 | budget_remaining | budget_limit - budget_used |
    | 14 | progress | groups decided / number of groups |
    | 15.. | importance | L1 magnitude of each unit of the group / the group's largest, zero-padded to max_units |

    The estimate in entry 11 is exact for parameters, and for FLOPs on sequential and residual
    networks (it counts what the FLOPs budget counts: biases, norms, activations and pooling
    too); the cost itself is always measured on the physically pruned network. Groups that cannot be pruned exactly are not steps
    (``env.skipped_groups``).

    ## Rewards
    0 on every step but the last. On the last step: top-1 accuracy in [0, 1] of the pruned
    network on the first ``eval_samples`` validation images (after ``finetune_steps`` Adam steps
    on training data when that is > 0; the attribute can be changed between episodes to apply a
    schedule such as the paper's 0 / 32 / 128; then, when ``bn_recalibration`` > 0, BatchNorm
    statistics re-estimated on that many fixed training batches). The settings in force are the
    scoring protocol, recorded with every scored mask (``info["scored"].protocol``).

    ## Cost
    ``info["cost"]`` is a float on every step: 0 before the last step, then the first budget's
    value. ``info["costs"]`` is the list of every budget's value. Built-in budgets (``"params"``,
    ``"flops"``, ``"latency"``, ``"ort-latency"``) are pruned / dense ratios; a callable ``f(pruned_model)`` is a
    black box whose value is used as it is (it must depend on the architecture only: values are
    cached by the kept widths). ``budget_limit`` is not enforced by the env; agents read it from
    ``env.unwrapped.budget_limit`` and ``info["constraint_satisfied"]`` reports it.

    ## Episode End
    Terminates after one step per group (``num_groups`` steps). Never truncated.
    Final-step ``info``: ``accuracy``, ``params_ratio``, ``flops_ratio``, ``cost``, ``costs``,
    ``budgets`` (name -> value), ``constraint_satisfied``, ``masks`` (group name -> kept unit
    indices), ``widths`` (group name -> kept width), and ``scored``: all of these as one
    :class:`prune_env.ScoredMask`, with the scoring protocol, ready for JSON
    (``evaluate_masks(masks)`` returns the same record outside an episode).

    ## Arguments
    | argument | default | meaning |
    |----------|---------|---------|
    | task | "fashion-mnist-cnn" | a name from ``prune_env.list_tasks()``, an entry-point task, or your own ``FILE.py:FUNCTION`` / ``module:FUNCTION`` (``prune_env.zoo.user_tasks``); ignored when ``model`` is given |
    | model | None | your own trained ``nn.Module`` instead of a task |
    | eval_data | None | with ``model``: ``(inputs, labels)`` tensors or a DataLoader (validation data) |
    | train_data | None | with ``model``: training data for ``finetune_steps`` (same forms) |
    | example_inputs | None | with ``model``: a batch for tracing; default the first 2 eval inputs |
    | budget | "params" | "params", "flops", "latency", "ort-latency", a ``Budget``, a callable, or a list of these |
    | budget_limit | 0.1 | a float, or a list with one limit per budget |
    | action_mode | "mask" | "mask" or "ratio" |
    | eval_samples | 1000 | validation images scored for the reward |
    | finetune_steps | 0 | Adam steps on training data before scoring |
    | finetune_batch_size, finetune_lr | 64, 3e-4 | the fine-tune's batch size and learning rate |
    | bn_recalibration | 0 | training batches that re-estimate BatchNorm statistics before scoring (EagleEye); 0 turns it off |
    | data_dir | None | where the task's dataset is (see ``prune_env.zoo.data``) |
    | val_size | 5000 | images held out of the training set as the validation split (keep the default: the shipped checkpoints were selected on it) |
    | device | "auto" | CUDA where available, else CPU |
    | strict | False | refuse a model any of whose groups cannot be pruned exactly (by default such groups stay whole, with a warning; ``env.skipped_groups`` names them and says why) |

    ```python
    import gymnasium as gym
    import prune_env  # registers PruneEnv-v0
    env = gym.make("PruneEnv-v0", task="fashion-mnist-mlp", budget="flops", budget_limit=0.3)
    ```

    ## Version History
    - v0: initial release.
    """

    metadata = {"render_modes": []}

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
        action_mode: str = "mask",
        eval_samples: int = ScoringProtocol.eval_samples,
        finetune_steps: int = ScoringProtocol.finetune_steps,
        finetune_batch_size: int = ScoringProtocol.finetune_batch_size,
        finetune_lr: float = ScoringProtocol.finetune_lr,
        bn_recalibration: int = ScoringProtocol.bn_recalibration,
        data_dir=None,
        val_size: int = DEFAULT_VAL_SIZE,
        device: str = "auto",
        strict: bool = False,
    ):
        super().__init__()
        if action_mode not in ("mask", "ratio"):
            raise ValueError(f"action_mode must be 'mask' or 'ratio', got {action_mode!r}")
        if int(eval_samples) < 1:
            raise ValueError(f"eval_samples must be >= 1, got {eval_samples}")
        self.action_mode = action_mode
        self.device = resolve_device(device)
        self.budgets, limits = make_budgets(budget, budget_limit)
        self.budget_limit: float | list[float] = limits if isinstance(budget, (list, tuple)) else limits[0]
        self.budget_limits: list[float] = limits  # one per budget, whatever form budget_limit took
        self.finetune_batch_size = int(finetune_batch_size)
        self.finetune_lr = float(finetune_lr)

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

        self.model = copy.deepcopy(source.model).to(self.device).eval()  # the dense network, never mutated
        example = source.example_inputs if example_inputs is None else example_inputs
        self.example_inputs = _to_device(example, self.device)
        self.eval_inputs, self.eval_labels = (
            source.eval_inputs.to(self.device),
            source.eval_labels.to(self.device),
        )

        analysis = analyze(self.model, self.example_inputs, strict=strict)
        self.analysis: GroupAnalysis = probe_groups(self.model, self.example_inputs, analysis, strict=strict)
        if self.analysis.skipped:
            warnings.warn(
                f"{len(self.analysis.skipped)} group(s) cannot be pruned exactly and stay whole "
                f"(env.skipped_groups says why): {', '.join(self.analysis.skipped)}",
                stacklevel=2,
            )
        self.groups = self.analysis.groups
        self.num_groups = len(self.groups)
        self.max_units = self.analysis.max_units
        self._masked = copy.deepcopy(self.model)  # masks are applied here, to check every export
        self._plan = export_plan(self.model, self.groups)  # None: export with Torch-Pruning
        self._dense_state = {k: v.clone() for k, v in self.model.state_dict().items()}

        for b in self.budgets:
            b.bind(self.model, self.example_inputs)
        self._report = [Params(), Flops()]
        for b in self._report:
            b.bind(self.model, self.example_inputs)
        self.budget_cache = BudgetCache(self.budgets)
        self._report_cache = BudgetCache(self._report)
        self.estimate = StructureEstimate(self.analysis, self.model, self.example_inputs)
        self._estimate_kind = "params" if isinstance(self.budgets[0], Params) else "flops"

        self.importance = [unit_importance(self.model, g) for g in self.groups]
        self._descriptors = self._static_descriptors()

        self.observation_space = spaces.Box(-1.0, 1.0, (len(DESCRIPTOR_NAMES) + self.max_units,), np.float32)
        if action_mode == "mask":
            self.action_space = spaces.MultiBinary(self.max_units)
        else:
            self.action_space = spaces.Box(0.0, 1.0, (1,), np.float32)

        self._step_index: int | None = None
        self._keep: list[np.ndarray] = []
        self.last_model: nn.Module | None = None
        self.last_masks: list[np.ndarray] | None = None

    # --- public API -------------------------------------------------------------------------

    @property
    def skipped_groups(self) -> dict[str, str]:
        """Groups left whole because they cannot be pruned exactly: root layer -> the reason."""
        return dict(self.analysis.skipped)

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

    def _training_count(self, name: str, value: int) -> int:
        """A protocol setting that counts training steps or batches: >= 0, and > 0 needs data."""
        value = int(value)
        if value < 0:
            raise ValueError(f"{name} must be >= 0 (0 turns it off), got {value}")
        if value > 0 and self._train_sampler is None:
            raise ValueError(f"{name} > 0 needs training data: pass train_data=... with a custom model")
        return value

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    def set_scoring(self, *, finetune_steps: int | None = None, bn_recalibration: int | None = None) -> None:
        """Change the scoring protocol between episodes (a method, so that ``VecEnv.env_method``
        reaches environments in other processes through their wrappers)."""
        if finetune_steps is not None:
            self.finetune_steps = finetune_steps
        if bn_recalibration is not None:
            self.bn_recalibration = bn_recalibration

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._restore_dense()
        self._step_index = 0
        self._keep = [np.ones(g.width, dtype=bool) for g in self.groups]
        return self._observation(), {"group": self.groups[0].name, "step": 0}

    def step(self, action):
        if self._step_index is None or self._step_index >= self.num_groups:
            raise ResetNeeded("call reset() before step(): the episode has not started or has ended")
        group = self.groups[self._step_index]
        kept, forced = self._parse_action(action, group)  # raises before any state changes
        self._keep[group.index] = kept
        self._step_index += 1
        info = {"group": group.name, "kept_units": int(kept.sum()), "forced_keep": forced}
        if self._step_index < self.num_groups:
            info.update(cost=0.0, costs=[0.0] * len(self.budgets))
            return self._observation(), 0.0, False, False, info
        scored = self._score([k.copy() for k in self._keep], source="episode")
        info.update(scored.info())
        return self._observation(), scored.accuracy, True, False, info

    def action_masks(self) -> np.ndarray:
        """Valid actions for sb3-contrib's MaskablePPO: per mask entry, [0 allowed, 1 allowed]."""
        if self.action_mode != "mask":
            raise AttributeError("action_masks() exists only with action_mode='mask'")
        index = min(self._step_index or 0, self.num_groups - 1)
        width = self.groups[index].width
        masks = np.ones((self.max_units, 2), dtype=bool)
        masks[width:, 1] = False
        return masks.reshape(-1)

    def export(self, masks=None) -> nn.Module:
        """The physically smaller network, in eval mode.

        Args:
            masks: ``None`` for the last finished episode's network (fine-tuned if
                ``finetune_steps`` > 0); else group name -> kept unit indices (as in
                ``info["masks"]``) or one boolean keep-array per group, pruned from the dense
                weights.
        """
        if masks is None:
            if self.last_model is None:
                raise RuntimeError("no finished episode yet: pass masks=... or finish an episode first")
            return copy.deepcopy(self.last_model)
        return self._prune(self._parse_masks(masks))

    def evaluate_masks(self, masks, *, source: str = "evaluated") -> ScoredMask:
        """Score the given masks outside an episode, exactly as an episode's last step does
        (same protocol, same budgets): for baselines, search methods and replays.

        Args:
            masks: group name -> kept unit indices, or one boolean keep-array per group.
            source: recorded in the result (the name of the method that chose the masks).
        """
        return self._score(self._parse_masks(masks), source)

    @property
    def protocol(self) -> ScoringProtocol:
        """How the next episode (or :meth:`evaluate_masks`) scores a mask."""
        return ScoringProtocol(
            eval_samples=len(self.eval_labels), finetune_steps=self.finetune_steps,
            finetune_batch_size=self.finetune_batch_size, finetune_lr=self.finetune_lr,
            bn_recalibration=self.bn_recalibration,
        )  # fmt: skip

    def training_batch(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of training data (the fine-tune's source), for importance criteria and searches."""
        if self._train_sampler is None:
            raise ValueError("this env has no training data: pass train_data=... with a custom model")
        return self._train_sampler(rng, batch_size)

    def estimated_budget(self, keep: Sequence[np.ndarray]) -> float:
        """The analytic estimate of the first budget for ``keep`` (the observation's
        ``budget_used``), without pruning anything: exact for parameters; the MAC ratio stands
        in for FLOPs, latency and callables."""
        params, flops = self.estimate.ratios(keep)
        return params if self._estimate_kind == "params" else flops

    def max_keep_ratio(self, steps: int = 20) -> float:
        """The largest keep-ratio for the current group with which the episode can still meet
        the first budget (by :meth:`estimated_budget`) when every later group keeps one unit:
        AMC's bound on its actions. 0 when even that does not fit (one unit is kept anyway)."""
        if self._step_index is None or self._step_index >= self.num_groups:
            raise ResetNeeded("max_keep_ratio() needs a running episode: call reset() first")
        current = self.groups[self._step_index]
        keep = list(self._keep)
        for group in self.groups[current.index + 1 :]:
            keep[group.index] = self._keep_largest(group, 0.0)

        def fits(ratio: float) -> bool:
            keep[current.index] = self._keep_largest(current, ratio)
            return self.estimated_budget(keep) <= self.budget_limits[0]

        return largest_fitting_ratio(fits, steps)

    def keep_from_ratios(self, ratios: Sequence[float]) -> list[np.ndarray]:
        """One keep-array per group from one keep-fraction per group, exactly as ratio actions
        are read: the ``round(ratio * width)`` units of largest L1 magnitude, at least one."""
        if len(ratios) != self.num_groups:
            raise ValueError(f"expected {self.num_groups} ratios (one per group), got {len(ratios)}")
        return [self._keep_largest(g, float(r)) for g, r in zip(self.groups, ratios)]

    def _keep_largest(self, group, ratio: float) -> np.ndarray:
        order = np.argsort(-self.importance[group.index], kind="stable")
        kept = np.zeros(group.width, dtype=bool)
        kept[order[: max(int(round(ratio * group.width)), 1)]] = True
        return kept

    def masks_to_dict(self, keep: Sequence[np.ndarray]) -> dict[str, list[int]]:
        return {g.name: np.flatnonzero(keep[g.index]).tolist() for g in self.groups}

    # --- episode internals ------------------------------------------------------------------

    def _score(self, keep: list[np.ndarray], source: str) -> ScoredMask:
        """Prune, measure, fine-tune per the protocol and score: the record of the last step."""
        widths = [int(k.sum()) for k in keep]
        # A protocol without fine-tune or recalibration, and built-in budgets, only read the
        # network: a keep-all episode then scores the dense network itself (export() hands out
        # copies of last_model). A user's callable budget always gets a copy.
        read_only = (
            self.finetune_steps == 0
            and self.bn_recalibration == 0
            and not any(isinstance(b, CallableBudget) for b in self.budgets)
        )
        pruned = self._prune(keep, share_dense=read_only)
        params_ratio, flops_ratio = self._report_cache.get(widths, pruned)
        costs = self.budget_cache.get(widths, pruned)
        if self.finetune_steps > 0:
            seed = int(self.np_random.integers(2**31))
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

    def _prune(self, keep: Sequence[np.ndarray], *, share_dense: bool = False) -> nn.Module:
        """Physically prune a copy of the dense network and prove it equals the masked one.

        The copy is cut by the export plan made at construction (no re-tracing), or by
        Torch-Pruning where the plan does not apply; either way it is checked against the
        masked network. With every unit kept the result is the dense network: a copy, or, with
        ``share_dense`` (a caller that only reads it), the dense network itself."""
        if all(k.all() for k in keep):
            return self.model if share_dense else copy.deepcopy(self.model).eval()
        self._restore_dense()
        apply_masks(self._masked, self.groups, keep)
        if self._plan is not None:
            pruned = cut_copy(self.model, self._plan, keep)
        else:
            pruned = prune_copy(self.model, self.example_inputs, self.groups, keep)
        check_export(self._masked, pruned, self.example_inputs)
        return pruned

    def _restore_dense(self) -> None:
        with torch.no_grad():
            for name, tensor in self._masked.state_dict().items():
                tensor.copy_(self._dense_state[name])

    def _parse_action(self, action, group) -> tuple[np.ndarray, bool]:
        width = group.width
        if self.action_mode == "ratio":
            ratio = _as_array(action, "ratio action")
            if ratio.size != 1:
                raise InvalidActionError(
                    f"ratio action must hold one number in [0, 1], got shape {ratio.shape}"
                )
            value = float(ratio.reshape(-1)[0])
            if not np.isfinite(value) or not 0.0 <= value <= 1.0:
                raise InvalidActionError(f"ratio action must be a finite number in [0, 1], got {value}")
            return self._keep_largest(group, value), int(round(value * width)) == 0
        mask = _as_array(action, "mask action")
        if mask.shape != (self.max_units,):
            raise InvalidActionError(
                f"mask action must have shape ({self.max_units},) (MultiBinary(max_units)), got {mask.shape}"
            )
        if mask.dtype.kind not in "biuf":
            raise InvalidActionError(f"mask action must be bool, integer or float, got dtype {mask.dtype}")
        if mask.dtype.kind == "f" and not np.isfinite(mask).all():
            raise InvalidActionError("mask action contains NaN or infinity; expected only 0 and 1")
        if not np.isin(mask, (0, 1)).all():
            bad = mask[~np.isin(mask, (0, 1))][:3]
            raise InvalidActionError(
                f"mask action must hold only 0 and 1 (1 = keep), got values such as {bad.tolist()}"
            )
        kept = mask[:width].astype(bool)
        forced = not kept.any()
        if forced:
            kept[int(np.argmax(self.importance[group.index]))] = True
        return kept, forced

    def _parse_masks(self, masks) -> list[np.ndarray]:
        if isinstance(masks, Mapping):
            unknown = set(masks) - set(self.group_names)
            if unknown:
                raise ValueError(f"unknown group names {sorted(unknown)}; groups are {self.group_names}")
            keep = []
            for g in self.groups:
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
            if len(keep) != self.num_groups or any(k.shape != (g.width,) for k, g in zip(keep, self.groups)):
                raise ValueError(
                    f"masks must be one boolean array per group with widths {[g.width for g in self.groups]}"
                )
        for k, g in zip(keep, self.groups):
            if not k.any():
                raise ValueError(f"group {g.name!r} must keep at least one unit")
        return keep

    # --- observations -----------------------------------------------------------------------

    def _static_descriptors(self) -> np.ndarray:
        groups = self.groups
        max_in = max(g.in_width for g in groups)
        max_kernel = max(g.kernel_size for g in groups)
        max_stride = max(g.stride for g in groups)
        rows = []
        for g in groups:
            rows.append([
                g.index / max(self.num_groups - 1, 1), float(g.kind == "conv"), float(g.kind == "linear"),
                float(g.coupled), float(g.tied), g.width / self.max_units, g.in_width / max_in,
                g.kernel_size / max_kernel, g.stride / max_stride, g.params_share, g.flops_share,
            ])  # fmt: skip
        return np.clip(np.asarray(rows, dtype=np.float32), 0.0, 1.0)

    def _observation(self) -> np.ndarray:
        index = min(self._step_index, self.num_groups - 1)
        used = self.estimated_budget(self._keep)
        limit = min(self.budget_limits[0], 1.0) if self.budgets[0].relative else 1.0
        dynamic = [used, limit, limit - used, self._step_index / self.num_groups]
        scores = np.zeros(self.max_units, dtype=np.float32)
        importance = self.importance[index]
        scores[: len(importance)] = importance / max(importance.max(), 1e-12)
        obs = np.concatenate([self._descriptors[index], np.asarray(dynamic, dtype=np.float32), scores])
        return np.clip(obs, -1.0, 1.0).astype(np.float32)

    def __repr__(self) -> str:
        budgets = ", ".join(repr(b) for b in self.budgets)
        return f"PruneEnv(task={self.task!r}, groups={self.num_groups}, budgets=[{budgets}], limit={self.budget_limit})"


# --- helpers -------------------------------------------------------------------------------


def largest_fitting_ratio(fits: Callable[[float], bool], steps: int = 20, upper: float = 1.0) -> float:
    """The largest value in [0, upper] for which ``fits`` holds (it must only fail above some
    point), by bisection: ``upper`` when it fits, else within ``upper * 2**-steps`` below the edge
    (0: nothing fits). A keep-ratio uses the default upper 1; a scale factor its own bound."""
    if fits(upper):
        return upper
    low, high = 0.0, upper
    for _ in range(steps):
        mid = (low + high) / 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def _as_array(action, what: str) -> np.ndarray:
    if isinstance(action, torch.Tensor):
        action = action.detach().cpu().numpy()
    try:
        return np.asarray(action)
    except Exception as exc:
        raise InvalidActionError(f"{what} could not be read as an array: {exc}") from exc


def _to_device(inputs, device):
    if isinstance(inputs, (tuple, list)):
        return tuple(t.to(device) for t in inputs)
    return inputs.to(device)
