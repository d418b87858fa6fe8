"""TabularProblem: a :class:`prune_env.PruneProblem` whose scores are looked up in a table.

It answers the part of PruneProblem's interface that searches, baselines and wrappers use
(keep-arrays from ratios, the analytic budget check, ``score`` returning a
:class:`prune_env.ScoredMask`, limits drawn from a range), so random search, evolution or an
agent's wrappers run on the table unchanged, in microseconds per evaluation. Ratios snap to the
table's nearest keep level; a mask that is not one of the table's cells is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from prune_env.budgets import Params, make_budget_list, make_budgets
from prune_env.errors import TableError
from prune_env.limits import LimitDistribution, parse_limits
from prune_env.problem import parse_masks
from prune_env.scored import ScoredMask, ScoringProtocol
from prune_env.tabular.table import BUDGETS, Table, nearest_level


@dataclass(frozen=True)
class TableGroup:
    """What a group is to a table: its name, position and width."""

    name: str
    index: int
    width: int


def resolve_table(task: str | None, table) -> Table:
    """A :class:`Table` from ``table`` (a Table or a path) or the one shipped for ``task``."""
    if table is None:
        return Table.for_task(task or "fashion-mnist-cnn")
    tab = table if isinstance(table, Table) else Table.load(table)
    if task is not None and task != tab.task:
        raise TableError(f"task {task!r} does not match the table's task {tab.task!r}: give one of them")
    return tab


class TabularProblem:
    """One pruning instance scored from a table: ``budget`` over the table's cost columns
    ("params", "flops", "latency", or a list), ``budget_limit`` as PruneProblem takes it (fixed,
    a ``(low, high)`` range or a list), ``scoring`` the accuracy column ("finetuned" or "raw").

    ``evaluations`` counts the scores asked for (what a search spent)."""

    def __init__(
        self,
        task: str | None = None,
        *,
        table: Table | str | None = None,
        budget="params",
        budget_limit=0.1,
        scoring: str = "finetuned",
    ):
        self.table = resolve_table(task, table)
        self.task = self.table.task
        names = budget if isinstance(budget, (list, tuple)) else [budget]
        unknown = [b for b in names if not isinstance(b, str) or b not in BUDGETS]
        if unknown:
            raise TableError(f"a table's budgets are {BUDGETS}; got {unknown}")
        self.budgets = make_budget_list(budget)
        self._several_budgets = isinstance(budget, (list, tuple))
        self.limit_distributions: list[LimitDistribution] = parse_limits(self.budgets, budget_limit)
        self.budget_limits: list[float] = [
            d.choices[0] if d.choices else d.high for d in self.limit_distributions
        ]
        self.estimate_kind = "params" if isinstance(self.budgets[0], Params) else "flops"
        self.scoring = scoring
        self._accuracy = {column: self.table.accuracy(column) for column in ("finetuned", "raw")}
        self.table.protocol(scoring)  # checks the column
        self._costs = [self.table.cost(b.name) for b in self.budgets]
        self._params, self._flops = self.table.cost("params"), self.table.cost("flops")
        self._estimate = self.table.estimate(self.estimate_kind, "used")
        self.groups = [
            TableGroup(n, i, int(w))
            for i, (n, w) in enumerate(zip(self.table.group_names, self.table.widths))
        ]
        self.importance = self.table.importance
        # what every record of a cell repeats, computed once
        self._names = self.table.group_names
        self._kept_lists = [[k.tolist() for k in per_level] for per_level in self.table.kept]
        self._units = self.table.units.tolist()
        self._protocols = {column: self.table.protocol(column) for column in ("finetuned", "raw")}
        self._accuracy_lists = {column: a.tolist() for column, a in self._accuracy.items()}  # floats
        self._cost_lists = [c.tolist() for c in self._costs]
        self._params_list, self._flops_list = self._params.tolist(), self._flops.tolist()
        self._budget_names = [b.name for b in self.budgets]
        self.evaluations = 0
        self.last_masks: list[np.ndarray] | None = None

    # --- the instance -------------------------------------------------------------------------

    @property
    def num_groups(self) -> int:
        return len(self.groups)

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    @property
    def max_units(self) -> int:
        return int(self.table.widths.max())

    @property
    def budget_limit(self) -> float | list[float]:
        return list(self.budget_limits) if self._several_budgets else self.budget_limits[0]

    @property
    def draws_limits(self) -> bool:
        return not all(d.fixed for d in self.limit_distributions)

    def set_budget_limit(self, limit) -> None:
        self.budget_limits = make_budgets(self.budgets, limit if self._several_budgets else [limit])[1]

    def draw_budget_limit(self, rng: np.random.Generator) -> list[float]:
        self.budget_limits = [d.draw(rng) for d in self.limit_distributions]
        return list(self.budget_limits)

    def optimum(self, column: str | None = None):
        """The table's best cell within the first budget's limit in force (the first budget's
        constraint only, as regret is measured)."""
        return self.table.optimum(self.budgets[0].name, self.budget_limits[0], column or self.scoring)

    # --- the scoring protocol (a column of the table) -----------------------------------------

    @property
    def protocol(self) -> ScoringProtocol:
        return self._protocols[self.scoring]

    @property
    def finetune_steps(self) -> int:
        return self.protocol.finetune_steps

    @finetune_steps.setter
    def finetune_steps(self, steps: int) -> None:
        for column in ("finetuned", "raw"):
            if self.table.protocol(column).finetune_steps == int(steps):
                self.scoring = column
                return
        raise TableError(
            f"the table holds scores after {self.table.protocol('finetuned').finetune_steps} or 0 fine-tune steps, not {steps}"
        )

    @property
    def bn_recalibration(self) -> int:
        return 0

    @bn_recalibration.setter
    def bn_recalibration(self, batches: int) -> None:
        if int(batches) != 0:
            raise TableError("the table holds no scores after BatchNorm recalibration")

    def set_scoring(self, *, finetune_steps: int | None = None, bn_recalibration: int | None = None) -> None:
        if finetune_steps is not None:
            self.finetune_steps = finetune_steps
        if bn_recalibration is not None:
            self.bn_recalibration = bn_recalibration

    # --- masks --------------------------------------------------------------------------------

    def level_index(self, ratio: float) -> int:
        """The table's keep level nearest ``ratio`` (the lower one on a tie)."""
        return nearest_level(self.table.midpoints, float(ratio))

    def keep_at_level(self, group: TableGroup, level: int) -> np.ndarray:
        kept = np.zeros(group.width, dtype=bool)
        kept[self.table.kept[group.index][level]] = True
        return kept

    def keep_largest(self, group: TableGroup, ratio: float) -> np.ndarray:
        """The largest-L1 units of the table level nearest ``ratio``."""
        return self.keep_at_level(group, self.level_index(ratio))

    def keep_from_ratios(self, ratios: Sequence[float]) -> list[np.ndarray]:
        if len(ratios) != self.num_groups:
            raise ValueError(f"expected {self.num_groups} ratios (one per group), got {len(ratios)}")
        return [self.keep_largest(g, float(r)) for g, r in zip(self.groups, ratios)]

    def masks_to_dict(self, keep) -> dict[str, list[int]]:
        return {g.name: np.flatnonzero(keep[g.index]).tolist() for g in self.groups}

    def parse_masks(self, masks) -> list[np.ndarray]:
        """Keep-arrays from group name -> kept indices or one boolean array per group, read as
        PruneProblem reads them (:func:`prune_env.problem.parse_masks`)."""
        return parse_masks(masks, self.groups)

    def levels_of(self, keep) -> list[int]:
        """Each group's level index for keep-arrays that are a cell of the table."""
        levels = []
        for g, kept in zip(self.groups, keep):
            count = int(np.count_nonzero(kept))
            matches = np.flatnonzero(self.table.units[g.index] == count)
            if matches.size == 0 or not np.array_equal(
                np.flatnonzero(kept), self.table.kept[g.index][matches[0]]
            ):
                raise TableError(
                    f"group {g.name!r} keeps {count} units that are not one of the table's levels "
                    f"(it holds the largest-L1 {self.table.units[g.index].tolist()} units)"
                )
            levels.append(int(matches[0]))
        return levels

    def estimated_budget(self, keep) -> float:
        """PruneEnv's analytic estimate of the first budget for a cell (stored with the table)."""
        return float(self._estimate[self.table.prefix(self.levels_of(keep))])

    def fits_estimate(self, keep) -> bool:
        return self.estimated_budget(keep) <= self.budget_limits[0]

    # --- scoring ------------------------------------------------------------------------------

    def score_cell(
        self, cell: int, *, source: str = "evaluated", levels: Sequence[int] | None = None
    ) -> ScoredMask:
        """The table's record of one cell under the limits in force (``levels``: its level
        indices, when the caller knows them)."""
        self.evaluations += 1
        costs = [c[cell] for c in self._cost_lists]
        levels = self.table.cell_levels(cell) if levels is None else levels
        limits = list(self.budget_limits)
        return ScoredMask(
            masks={name: self._kept_lists[g][j][:] for g, (name, j) in enumerate(zip(self._names, levels))},
            widths={name: self._units[g][j] for g, (name, j) in enumerate(zip(self._names, levels))},
            accuracy=self._accuracy_lists[self.scoring][cell],
            costs=costs,
            budgets=dict(zip(self._budget_names, costs)),
            limits=limits,
            params_ratio=self._params_list[cell],
            flops_ratio=self._flops_list[cell],
            satisfied=all(c <= lim for c, lim in zip(costs, limits)),
            protocol=self._protocols[self.scoring],
            source=source,
        )

    def score(self, masks, *, source: str = "evaluated", rng=None, seed=None) -> ScoredMask:
        """The tabulated score of a mask that is one of the table's cells (``rng`` and ``seed``
        are accepted for PruneProblem's signature: each cell's fine-tune seed is fixed)."""
        keep = self.parse_masks(masks)
        cell = self.table.cell(self.levels_of(keep))
        self.last_masks = keep
        return self.score_cell(cell, source=source)

    def score_ratios(self, ratios: Sequence[float], *, source: str = "evaluated", rng=None) -> ScoredMask:
        levels = [self.level_index(r) for r in ratios]
        if len(levels) != self.num_groups:
            raise ValueError(f"expected {self.num_groups} ratios (one per group), got {len(levels)}")
        return self.score_cell(self.table.cell(levels), source=source)

    def __repr__(self) -> str:
        budgets = ", ".join(b.name for b in self.budgets)
        return f"TabularProblem(task={self.task!r}, budgets=[{budgets}], limit={self.budget_limit}, scoring={self.scoring!r})"
