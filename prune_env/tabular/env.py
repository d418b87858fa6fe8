"""TabularPruneEnv (``PruneEnv-Tabular-v0``): PruneEnv's MDP with the rewards looked up.

Same episode (one step per group, in forward order), same observation (built from the
estimates the table stores, equal to the live env's), same cost conventions; the reward is the
table's accuracy of the cell the episode chose, so an episode costs microseconds and the best
cell for any limit is known (``env.unwrapped.optimum()``): regret is measurable.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from prune_env.env import DESCRIPTOR_NAMES, OBSERVATIONS, SUMMARY_NAMES
from prune_env.errors import InvalidActionError
from prune_env.tabular.problem import TabularProblem
from prune_env.tabular.table import Optimum, Table, nearest_level

ACTION_MODES = ("ratio", "discrete")
BUDGET_USED, BUDGET_LIMIT, BUDGET_REMAINING = 11, 12, 13  # observation entries that depend on the limit


class TabularPruneEnv(gym.Env):
    """
    ## Description
    :class:`prune_env.PruneEnv` over a pruning table (:mod:`prune_env.tabular.table`): the
    network is never touched. Every cell of the table (one keep level per group, each group
    keeping its largest-L1 units) was scored once by the live env, its fine-tune seeded by the
    cell's number; ``prune-env table verify`` re-scores cells live and checks they match.

    ## Action Space
    - ``action_mode="ratio"``: ``Box(0, 1, (1,))`` as PruneEnv's ratio mode, snapped to the
      table's nearest keep level (``info["level"]``).
    - ``action_mode="discrete"``: ``Discrete(levels)``, the level index.

    ## Observation Space
    PruneEnv's, entry for entry (``observation="summary"``, the default: 26 entries;
    ``"units"``: 15 + widest group's units); see :class:`prune_env.PruneEnv`. Entries 11 and 17
    come from the analytic estimates the table stores per prefix of decided groups.

    ## Rewards
    0 on every step but the last; then the table's validation accuracy of the chosen cell
    under ``scoring``: ``"finetuned"`` (the boards' protocol: 32 Adam steps, 1,000 images) or
    ``"raw"`` (no fine-tune).

    ## Cost
    As PruneEnv: ``info["cost"]`` (0 before the last step, then the first budget's ratio) and
    ``info["costs"]``. Budgets: ``"params"``, ``"flops"``, ``"latency"`` (a CPU latency measured
    once when the table was built), or a list of them.

    ## Instance distributions
    ``budget_limit`` a number, a ``(low, high)`` range or a list, drawn per episode as in
    PruneEnv; ``reset(options={"budget_limit": x})`` fixes it for one episode.

    ## Episode End
    After one step per group. Final ``info``: PruneEnv's (``accuracy``, ``cost``, ``costs``,
    ``budgets``, ``params_ratio``, ``flops_ratio``, ``constraint_satisfied``, ``masks``,
    ``widths``, ``scored``) plus ``cell`` (the cell's number) and ``levels`` (level per group).

    ## Arguments
    | argument | default | meaning |
    |----------|---------|---------|
    | task | "fashion-mnist-cnn" | a task a table ships for (``prune_env.tabular.available()``) |
    | table | None | a :class:`Table` or a table file instead of the shipped one |
    | budget | "params" | "params", "flops", "latency", or a list of them |
    | budget_limit | 0.1 | a float, a ``(low, high)`` range or a list (drawn per episode) |
    | action_mode | "ratio" | "ratio" or "discrete" |
    | observation | "summary" | "summary" or "units" |
    | scoring | "finetuned" | "finetuned" or "raw" |

    ```python
    import gymnasium as gym
    import prune_env  # registers PruneEnv-Tabular-v0
    env = gym.make("PruneEnv-Tabular-v0", task="fashion-mnist-mlp", budget="params", budget_limit=0.25)
    ```

    ## Version History
    - v0: initial release.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        task: str | None = None,
        *,
        table: Table | str | None = None,
        budget="params",
        budget_limit=0.1,
        action_mode: str = "ratio",
        observation: str = "summary",
        scoring: str = "finetuned",
    ):
        super().__init__()
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        if observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
        self.problem = TabularProblem(
            task, table=table, budget=budget, budget_limit=budget_limit, scoring=scoring
        )
        self.table = self.problem.table
        self.action_mode, self.observation_kind = action_mode, observation
        tab = self.table
        self._levels = tab.levels
        self._midpoints = tab.midpoints
        self._radix_levels = tab.num_levels
        self._rows, self._used = self._observation_rows()
        self._cell_estimate = self._used[tab.offsets[-2] :]  # full cells: the estimate of each
        self.observation_space = spaces.Box(-1.0, 1.0, (self._rows.shape[1],), np.float32)
        if action_mode == "ratio":
            self.action_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        else:
            self.action_space = spaces.Discrete(tab.num_levels)
        self._offsets = tab.offsets.tolist()
        self._names = tab.group_names
        self._units = tab.units.tolist()
        self._forced = [[int(round(v * w)) == 0 for v in tab.levels] for w in tab.widths.tolist()]
        self._zero_costs = [0.0] * len(self.problem.budgets)
        self._step_index: int | None = None
        self._number = 0  # the decided prefix, in mixed radix
        self._chosen: list[int] = []

    # --- the instance ---------------------------------------------------------------------------

    @property
    def num_groups(self) -> int:
        return self.table.num_groups

    @property
    def groups(self):
        return self.problem.groups

    @property
    def max_units(self) -> int:
        return self.problem.max_units

    @property
    def tasks(self) -> list[str]:
        return [self.table.task]

    @property
    def budget_limit(self) -> float | list[float]:
        return self.problem.budget_limit

    @property
    def budget_limits(self) -> list[float]:
        return self.problem.budget_limits

    @property
    def draws_limits(self) -> bool:
        return self.problem.draws_limits

    def optimum(self) -> Optimum:
        """The table's best cell within the first budget's limit in force (the regret reference)."""
        return self.problem.optimum()

    def set_scoring(self, *, finetune_steps: int | None = None, bn_recalibration: int | None = None) -> None:
        """Switch the reward's column by its fine-tune steps (the table's, or 0 for ``"raw"``)."""
        self.problem.set_scoring(finetune_steps=finetune_steps, bn_recalibration=bn_recalibration)

    @property
    def finetune_steps(self) -> int:
        return self.problem.finetune_steps

    @finetune_steps.setter
    def finetune_steps(self, steps: int) -> None:
        self.set_scoring(finetune_steps=steps)

    # --- the MDP ----------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if options:
            unknown = sorted(set(options) - {"task", "budget_limit"})
            if unknown:
                raise ValueError(f"unknown reset option(s) {unknown}; known: 'task', 'budget_limit'")
            if "task" in options and options["task"] != self.table.task:
                raise ValueError(f"task {options['task']!r} is not this env's task {self.table.task!r}")
        if "budget_limit" in options:
            self.problem.set_budget_limit(options["budget_limit"])
        else:
            self.problem.draw_budget_limit(self.np_random)
        self._set_limit_entries()
        self._step_index, self._number, self._chosen = 0, 0, []
        info = {
            "group": self._names[0],
            "step": 0,
            "task": self.table.task,
            "budget_limits": list(self.budget_limits),
        }
        return self._observation(0), info

    def step(self, action):
        t = self._step_index
        if t is None or t >= len(self._names):
            raise ResetNeeded("call reset() before step(): the episode has not started or has ended")
        level = self._parse_action(action)
        self._chosen.append(level)
        self._number = self._number * self._radix_levels + level
        self._step_index = t = t + 1
        info = {
            "group": self._names[t - 1],
            "kept_units": self._units[t - 1][level],
            "forced_keep": self._forced[t - 1][level],
            "level": level,
        }
        obs = self._observation(self._offsets[t] + self._number)
        if t < len(self._names):
            info.update(cost=0.0, costs=list(self._zero_costs))
            return obs, 0.0, False, False, info
        if self.problem.scoring == "finetuned":
            # PruneEnv draws the fine-tune's seed here from np_random; drawing it too keeps every
            # later limit (and observation) equal to the live env's after one seeded reset
            self.np_random.integers(2**31)
        scored = self.problem.score_cell(self._number, source="episode", levels=self._chosen)
        info.update(
            scored.info(),
            task=self.table.task,
            budget_limits=list(scored.limits),
            cell=self._number,
            levels=list(self._chosen),
        )
        return obs, scored.accuracy, True, False, info

    def max_keep_ratio(self) -> float:
        """The largest keep level of the current group with which the episode can still meet the
        first budget (by the estimate the table stores) when every later group keeps the table's
        lowest level: PruneEnv's bound (AMC's), on the table's grid, so the wrappers that clip or
        scale actions to it (ClipToBudget, ScaleToBudget) keep every episode feasible. 0 when
        none can (the lowest level is then kept)."""
        t = self._step_index
        if t is None or t >= len(self._names):
            raise ResetNeeded("max_keep_ratio() needs a running episode: call reset() first")
        L, G = self._radix_levels, len(self._names)
        first = (self._number * L + np.arange(L)) * L ** (G - t - 1)  # later groups at level 0
        fitting = np.flatnonzero(self._cell_estimate[first] <= self.budget_limits[0])
        return float(self._levels[fitting[-1]]) if fitting.size else 0.0

    def _parse_action(self, action) -> int:
        if self.action_mode == "discrete":
            value = np.asarray(action)
            if (
                value.size != 1
                or value.dtype.kind not in "iu"
                or not 0 <= int(value.flat[0]) < self._radix_levels
            ):
                raise InvalidActionError(
                    f"a discrete action is one level index in [0, {self._radix_levels}), got {action!r}"
                )
            return int(value.flat[0])
        try:
            ratio = action if isinstance(action, np.ndarray) else np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidActionError(f"ratio action must be a number in [0, 1], got {action!r}") from exc
        if ratio.size != 1:
            raise InvalidActionError(f"ratio action must hold one number in [0, 1], got shape {ratio.shape}")
        try:
            value = float(ratio.flat[0])
        except (TypeError, ValueError) as exc:
            raise InvalidActionError(f"ratio action must be a number in [0, 1], got {action!r}") from exc
        if not 0.0 <= value <= 1.0:  # also refuses NaN
            raise InvalidActionError(f"ratio action must be a finite number in [0, 1], got {value}")
        return nearest_level(self._midpoints, value)

    # --- observations -------------------------------------------------------------------------

    def _set_limit_entries(self) -> None:
        """Observation entries 12-13 read the first budget's limit (1 for absolute budgets)."""
        self._limit_value = min(self.budget_limits[0], 1.0) if self.problem.budgets[0].relative else 1.0
        self._limit_entry = _clip(self._limit_value)

    def _observation(self, prefix: int) -> np.ndarray:
        obs = self._rows[prefix].copy()
        obs[BUDGET_LIMIT] = self._limit_entry
        obs[BUDGET_REMAINING] = _clip(self._limit_value - self._used[prefix])
        return obs

    def _observation_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """PruneEnv's observation for every prefix of decided groups, but for the two entries
        that depend on the limit (filled in per step), computed with the same float32 casts."""
        tab, kind = self.table, self.problem.estimate_kind
        used, floor = tab.estimate(kind, "used"), tab.estimate(kind, "floor")
        G = tab.num_groups
        width = len(DESCRIPTOR_NAMES) + (
            len(SUMMARY_NAMES) if self.observation_kind == "summary" else self.max_units
        )
        rows = np.zeros((len(used), width), dtype=np.float32)
        macs = float(kind != "params")
        for t in range(G + 1):
            ids = slice(tab.offsets[t], tab.offsets[t + 1])
            g = min(t, G - 1)
            rows[ids, :BUDGET_USED] = tab.arrays["descriptors"][g]
            rows[ids, BUDGET_USED] = used[ids].astype(np.float32)
            rows[ids, 14] = np.float32(t / G)
            if self.observation_kind == "summary":
                rows[ids, 15] = np.float32(np.log2(tab.widths[g]) / 12.0)
                rows[ids, 16] = np.float32(macs)
                rows[ids, 17] = floor[ids].astype(np.float32)
                rows[ids, 18:] = tab.arrays["summaries"][g]
            else:
                importance = tab.importance[g]
                rows[ids, 15 : 15 + len(importance)] = importance / max(importance.max(), 1e-12)
        np.clip(rows, -1.0, 1.0, out=rows)
        return rows, used

    def __repr__(self) -> str:
        return f"TabularPruneEnv({self.problem!r}, action_mode={self.action_mode!r})"


def _clip(value: float) -> float:
    return -1.0 if value < -1.0 else 1.0 if value > 1.0 else value
