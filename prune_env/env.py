"""PruneEnv: structured pruning of a trained network as a constrained MDP.

The env is the MDP only (spaces, reset/step, observation, action parsing, info); the pruning
instance it steps over, and everything that scores a mask, is a :class:`prune_env.PruneProblem`.
"""

from __future__ import annotations

import copy
import os

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from torch import nn

from prune_env.bisection import largest_fitting_ratio
from prune_env.errors import InvalidActionError
from prune_env.problem import PruneProblem


def _one_thread_after_fork() -> None:
    """A process forked from one whose PyTorch already ran multi-threaded hangs at its first
    parallel operation (OpenMP's thread pool does not survive ``fork``), and Gymnasium's
    ``AsyncVectorEnv`` forks by default after building one env in the parent. Forked children
    therefore run PyTorch on one thread, as PyTorch's own DataLoader workers do. For workers with
    several threads each, start them another way (``vector_kwargs={"context": "forkserver"}``)."""
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=_one_thread_after_fork)


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

# Ratio mode's fixed-length stand-in for the per-unit importance vector (whose length is the
# widest group's), so that one policy reads every network: see the class docstring.
IMPORTANCE_QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9)
SUMMARY_NAMES = (
    "log_width",
    "budget_is_macs",
    "budget_floor",
    *(f"importance_q{int(100 * q):02d}" for q in IMPORTANCE_QUANTILES),
    "importance_mean",
    "importance_std",
)
OBSERVATIONS = ("units", "summary")


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
    ``observation="units"`` (the default in mask mode): ``Box(-1, 1, (15 + max_units,), float32)``;
    ``observation="summary"`` (the default in ratio mode): ``Box(-1, 1, (26,), float32)``, one
    length for every network, so one policy runs on any of them. Entries 0-14 are shared:

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
    | 15.. | importance | ``units``: L1 magnitude of each unit of the group / the group's largest, zero-padded to max_units |

    ``summary`` replaces the per-unit vector by eleven entries:

    | index | name | meaning |
    |-------|------|---------|
    | 15 | log_width | log2(units of the group) / 12 (the absolute width; 4,096 units is 1) |
    | 16 | budget_is_macs | 1 when entry 11 estimates MACs (FLOPs, latency, callables), 0 for parameters |
    | 17 | budget_floor | the estimate of entry 11 if this group and every later one kept one unit: the least the episode can still reach |
    | 18-23 | importance_q00 .. q90 | quantiles 0, 0.1, 0.25, 0.5, 0.75, 0.9 of the group's units' L1 magnitude / the group's largest |
    | 24 | importance_mean | their mean |
    | 25 | importance_std | their standard deviation |

    The committed leaderboards' ratio-mode entries were trained on ``units``: their grids set
    ``observation: units``, so a re-run reproduces them.

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

    ## Instance distributions
    ``budget_limit`` may be a ``(low, high)`` range or a list of values (with several budgets,
    one such form per budget; :mod:`prune_env.limits`): each ``reset`` draws the episode's limit
    from the env's seeded generator, and entry 12, ``info["budget_limits"]`` and the episode's
    :class:`prune_env.ScoredMask` (``limits``) carry it. ``task`` may be a list of tasks: each
    ``reset`` draws one (its :class:`~prune_env.PruneProblem` is built once, at construction,
    and kept). ``reset(options={"task": name, "budget_limit": x})`` picks either for one episode.
    Task lists work in both action modes (mask mode pads to the widest group of any task); the
    summary observation gives them one layout. Constrained agents read the limit in force from
    ``env.unwrapped.budget_limit``; when it is drawn, :class:`prune_env.wrappers.CostOverLimit`
    reports the cost as a share of the drawn limit, so one ``cost_limit`` of 1 holds for every
    episode (the agent registry adds it for such envs).

    ## Episode End
    Terminates after one step per group (``num_groups`` steps). Never truncated.
    Reset ``info``: ``group``, ``step``, ``task``, ``budget_limits`` (the limits in force).
    Final-step ``info``: ``task``, ``budget_limits``, ``accuracy``, ``params_ratio``, ``flops_ratio``, ``cost``, ``costs``,
    ``budgets`` (name -> value), ``constraint_satisfied``, ``masks`` (group name -> kept unit
    indices), ``widths`` (group name -> kept width), and ``scored``: all of these as one
    :class:`prune_env.ScoredMask`, with the scoring protocol, ready for JSON
    (``env.problem.score(masks)`` returns the same record outside an episode).

    ## Arguments
    Every argument but ``problem`` and ``action_mode`` builds the :class:`prune_env.PruneProblem`
    the env steps over (``env.problem``: the network, its groups, budgets and scoring protocol).

    | argument | default | meaning |
    |----------|---------|---------|
    | problem | None | a :class:`prune_env.PruneProblem` (or a list of them) to step over, instead of the arguments below |
    | action_mode | "mask" | "mask" or "ratio" |
    | observation | "auto" | "units", "summary", or "auto": "summary" in ratio mode, "units" in mask mode |
    | task | "fashion-mnist-cnn" | a name from ``prune_env.list_tasks()``, an entry-point task, or your own ``FILE.py:FUNCTION`` / ``module:FUNCTION`` (``prune_env.zoo.user_tasks``), or a list of these (one drawn per episode); ignored when ``model`` is given |
    | model | None | your own trained ``nn.Module`` instead of a task |
    | eval_data | None | with ``model``: ``(inputs, labels)`` tensors or a DataLoader (validation data) |
    | train_data | None | with ``model``: training data for ``finetune_steps`` (same forms) |
    | example_inputs | None | with ``model``: a batch for tracing; default the first 2 eval inputs |
    | budget | "params" | "params", "flops", "latency", "ort-latency", a ``Budget``, a callable, or a list of these |
    | budget_limit | 0.1 | a float, a ``(low, high)`` range or a list of values (drawn per episode), or with several budgets one of these per budget |
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
    - v0: initial release; limits drawn per episode, task lists and the ratio mode's summary
      observation were added without changing what a fixed-limit, one-task, mask-mode env does.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        task: str | list[str] | None = None,
        *,
        problem: PruneProblem | list[PruneProblem] | None = None,
        action_mode: str = "mask",
        observation: str = "auto",
        **problem_args,
    ):
        super().__init__()
        if action_mode not in ("mask", "ratio"):
            raise ValueError(f"action_mode must be 'mask' or 'ratio', got {action_mode!r}")
        if observation not in ("auto", *OBSERVATIONS):
            raise ValueError(f"observation must be 'auto', 'units' or 'summary', got {observation!r}")
        if problem is not None and (task is not None or problem_args):
            raise ValueError("pass either problem=... or the arguments that build one, not both")
        problems = _problems(task, problem, problem_args)
        self.problems: dict[str, PruneProblem] = {}
        for p in problems:
            if p.task in self.problems:
                raise ValueError(f"task {p.task!r} is listed twice: give each task once")
            self.problems[p.task] = p
        self.problem = problems[0]
        self.action_mode = action_mode
        self.observation_kind = (
            observation if observation != "auto" else ("summary" if action_mode == "ratio" else "units")
        )
        self._max_units = max(p.max_units for p in problems)
        self._descriptors = {name: self._static_descriptors(p) for name, p in self.problems.items()}
        self._summaries = {name: _importance_summaries(p) for name, p in self.problems.items()}
        tail = len(SUMMARY_NAMES) if self.observation_kind == "summary" else self.max_units
        self.observation_space = spaces.Box(-1.0, 1.0, (len(DESCRIPTOR_NAMES) + tail,), np.float32)
        if action_mode == "mask":
            self.action_space = spaces.MultiBinary(self.max_units)
        else:
            self.action_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self._step_index: int | None = None
        self._keep: list[np.ndarray] = []

    # --- the instance, as the MDP and its agents read it ------------------------------------

    @property
    def groups(self):
        return self.problem.groups

    @property
    def num_groups(self) -> int:
        return self.problem.num_groups

    @property
    def max_units(self) -> int:
        """The widest group's number of units (over every task of a task list)."""
        return self._max_units

    @property
    def tasks(self) -> list[str]:
        """The tasks episodes are drawn from (one for an env over one problem)."""
        return list(self.problems)

    @property
    def budget_limit(self) -> float | list[float]:
        """The limit in force (agents read it from ``env.unwrapped.budget_limit``)."""
        return self.problem.budget_limit

    @property
    def budget_limits(self) -> list[float]:
        return self.problem.budget_limits

    @property
    def draws_limits(self) -> bool:
        """Whether each episode draws its limit (``budget_limit`` a range or a list)."""
        return self.problem.draws_limits

    @property
    def skipped_groups(self) -> dict[str, str]:
        """Groups left whole because they cannot be pruned exactly: root layer -> the reason."""
        return self.problem.skipped_groups

    @property
    def finetune_steps(self) -> int:
        """The protocol's fine-tune steps before scoring; may change between episodes."""
        return self.problem.finetune_steps

    @finetune_steps.setter
    def finetune_steps(self, steps: int) -> None:
        self.set_scoring(finetune_steps=steps)

    @property
    def bn_recalibration(self) -> int:
        """The protocol's BatchNorm re-estimation batches; may change between episodes."""
        return self.problem.bn_recalibration

    @bn_recalibration.setter
    def bn_recalibration(self, batches: int) -> None:
        self.set_scoring(bn_recalibration=batches)

    def set_scoring(self, *, finetune_steps: int | None = None, bn_recalibration: int | None = None) -> None:
        """Change the scoring protocol between episodes (a method, so that ``VecEnv.env_method``
        reaches environments in other processes through their wrappers); every task's."""
        for p in self.problems.values():
            p.set_scoring(finetune_steps=finetune_steps, bn_recalibration=bn_recalibration)

    # --- the MDP ----------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode: draw its task (a task list) and its limit (a range or a list).

        ``options={"task": name}`` picks the task and ``options={"budget_limit": x}`` fixes the
        limit (a float, or one per budget) for this episode only; neither draws then."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"task", "budget_limit"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; known: 'task', 'budget_limit'")
        if "task" in options:
            name = options["task"]
            if name not in self.problems:
                raise ValueError(f"task {name!r} is not one of this env's tasks {self.tasks}")
        elif len(self.problems) > 1:
            name = self.tasks[int(self.np_random.integers(len(self.problems)))]
        else:
            name = self.problem.task
        problem = self.problems[name]
        if "budget_limit" in options:
            problem.set_budget_limit(options["budget_limit"])  # checked before anything changes
        else:
            problem.draw_budget_limit(self.np_random)  # a fixed limit draws nothing
        self.problem = problem
        self.problem.restore_dense()
        self._step_index = 0
        self._keep = [np.ones(g.width, dtype=bool) for g in self.groups]
        info = {
            "group": self.groups[0].name,
            "step": 0,
            "task": name,
            "budget_limits": list(self.budget_limits),
        }
        return self._observation(), info

    def step(self, action):
        if self._step_index is None or self._step_index >= self.num_groups:
            raise ResetNeeded("call reset() before step(): the episode has not started or has ended")
        group = self.groups[self._step_index]
        kept, forced = self._parse_action(action, group)  # raises before any state changes
        self._keep[group.index] = kept
        self._step_index += 1
        info = {"group": group.name, "kept_units": int(kept.sum()), "forced_keep": forced}
        if self._step_index < self.num_groups:
            info.update(cost=0.0, costs=[0.0] * len(self.problem.budgets))
            return self._observation(), 0.0, False, False, info
        scored = self.problem.score([k.copy() for k in self._keep], source="episode", rng=self.np_random)
        info.update(scored.info(), task=self.problem.task, budget_limits=list(scored.limits))
        return self._observation(), scored.accuracy, True, False, info

    def action_masks(self) -> np.ndarray:
        """Valid actions for sb3-contrib's MaskablePPO: per mask entry, [0 allowed, 1 allowed]."""
        if self.action_mode != "mask":
            raise AttributeError("action_masks() exists only with action_mode='mask'")
        index = min(self._step_index or 0, self.num_groups - 1)
        masks = np.ones((self.max_units, 2), dtype=bool)
        masks[self.groups[index].width :, 1] = False
        return masks.reshape(-1)

    def export(self) -> nn.Module:
        """A copy of the last finished episode's network (fine-tuned if ``finetune_steps`` > 0),
        in eval mode. ``env.problem.export(masks)`` prunes any other masks from the dense weights."""
        if self.problem.last_model is None:
            raise RuntimeError("no finished episode yet: finish an episode, or use env.problem.export(masks)")
        return copy.deepcopy(self.problem.last_model)

    def max_keep_ratio(self, steps: int = 20) -> float:
        """The largest keep-ratio for the current group with which the episode can still meet
        the first budget (by the problem's analytic estimate) when every later group keeps one
        unit: AMC's bound on its actions. 0 when even that does not fit (one unit is kept anyway)."""
        if self._step_index is None or self._step_index >= self.num_groups:
            raise ResetNeeded("max_keep_ratio() needs a running episode: call reset() first")
        current, keep = self.groups[self._step_index], list(self._keep)
        for group in self.groups[current.index + 1 :]:
            keep[group.index] = self.problem.keep_largest(group, 0.0)

        def fits(ratio: float) -> bool:
            keep[current.index] = self.problem.keep_largest(current, ratio)
            return self.problem.fits_estimate(keep)

        return largest_fitting_ratio(fits, steps)

    def _parse_action(self, action, group) -> tuple[np.ndarray, bool]:
        """The group's keep-array for ``action``, and whether a unit had to be forced."""
        if self.action_mode == "ratio":
            ratio = _as_array(action, "ratio action")
            if ratio.size != 1:
                raise InvalidActionError(
                    f"ratio action must hold one number in [0, 1], got shape {ratio.shape}"
                )
            value = float(ratio.reshape(-1)[0])
            if not np.isfinite(value) or not 0.0 <= value <= 1.0:
                raise InvalidActionError(f"ratio action must be a finite number in [0, 1], got {value}")
            return self.problem.keep_largest(group, value), int(round(value * group.width)) == 0
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
        kept = mask[: group.width].astype(bool)
        forced = not kept.any()
        if forced:
            kept[int(np.argmax(self.problem.importance[group.index]))] = True
        return kept, forced

    # --- observations -----------------------------------------------------------------------

    def _static_descriptors(self, problem: PruneProblem) -> np.ndarray:
        groups = problem.groups
        max_in = max(g.in_width for g in groups)
        max_kernel = max(g.kernel_size for g in groups)
        max_stride = max(g.stride for g in groups)
        rows = [
            [
                g.index / max(problem.num_groups - 1, 1), float(g.kind == "conv"), float(g.kind == "linear"),
                float(g.coupled), float(g.tied), g.width / self.max_units, g.in_width / max_in,
                g.kernel_size / max_kernel, g.stride / max_stride, g.params_share, g.flops_share,
            ]
            for g in groups
        ]  # fmt: skip
        return np.clip(np.asarray(rows, dtype=np.float32), 0.0, 1.0)

    def _observation(self) -> np.ndarray:
        problem = self.problem
        index = min(self._step_index, self.num_groups - 1)
        used = problem.estimated_budget(self._keep)
        limit = min(self.budget_limits[0], 1.0) if problem.budgets[0].relative else 1.0
        dynamic = [used, limit, limit - used, self._step_index / self.num_groups]
        if self.observation_kind == "summary":
            floor = list(self._keep)
            for g in self.groups[index:] if self._step_index < self.num_groups else []:
                floor[g.index] = problem.keep_largest(g, 0.0)
            macs = float(problem.estimate_kind != "params")
            tail = np.concatenate([[np.log2(self.groups[index].width) / 12.0, macs, problem.estimated_budget(floor)],
                                   self._summaries[problem.task][index]]).astype(np.float32)  # fmt: skip
        else:
            tail = np.zeros(self.max_units, dtype=np.float32)
            importance = problem.importance[index]
            tail[: len(importance)] = importance / max(importance.max(), 1e-12)
        descriptors = self._descriptors[problem.task][index]
        obs = np.concatenate([descriptors, np.asarray(dynamic, dtype=np.float32), tail])
        return np.clip(obs, -1.0, 1.0).astype(np.float32)

    def __repr__(self) -> str:
        return f"PruneEnv({self.problem!r}, action_mode={self.action_mode!r})"


def _problems(task, problem, problem_args) -> list[PruneProblem]:
    """The problems an env steps over: the one or many given, or one built per task."""
    if problem is not None:
        problems = list(problem) if isinstance(problem, (list, tuple)) else [problem]
    elif isinstance(task, (list, tuple)):
        problems = [PruneProblem(t, **problem_args) for t in task]
    else:
        return [PruneProblem(task, **problem_args)]
    if not problems:
        raise ValueError("a task list needs at least one task")
    return problems


def _importance_summaries(problem: PruneProblem) -> np.ndarray:
    """Per group: quantiles, mean and standard deviation of its units' L1 importance over the
    group's largest (ratio mode's fixed-length stand-in for the per-unit vector)."""
    rows = []
    for importance in problem.importance:
        relative = importance / max(float(importance.max()), 1e-12)
        rows.append([*np.quantile(relative, IMPORTANCE_QUANTILES), relative.mean(), relative.std()])
    return np.asarray(rows, dtype=np.float32)


def _as_array(action, what: str) -> np.ndarray:
    if isinstance(action, torch.Tensor):
        action = action.detach().cpu().numpy()
    try:
        return np.asarray(action)
    except Exception as exc:
        raise InvalidActionError(f"{what} could not be read as an array: {exc}") from exc
