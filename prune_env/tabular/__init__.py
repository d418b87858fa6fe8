"""Tabulated pruning benchmarks: every cell of a keep-level grid scored once, so episodes are
lookups and the optimum of every budget is known.

- :class:`Table` (:mod:`.table`): one task's table, its cells, costs, protocols and optimum.
- :class:`TabularProblem` (:mod:`.problem`): PruneProblem's scoring interface over a table, for
  searches and wrappers.
- :class:`TabularPruneEnv` (:mod:`.env`, ``PruneEnv-Tabular-v0``): PruneEnv's MDP with the
  reward looked up.
"""

from prune_env.tabular.env import TabularPruneEnv
from prune_env.tabular.problem import TabularProblem
from prune_env.tabular.table import Optimum, Table, available

__all__ = ["Optimum", "Table", "TabularProblem", "TabularPruneEnv", "available"]
