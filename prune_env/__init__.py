"""prune-env: neural-network pruning under compute budgets as a Gymnasium constrained MDP.

``import prune_env`` registers ``PruneEnv-v0``; ``gym.make("prune_env:PruneEnv-v0")`` works
without the import. This package (the environment core and the task zoo, ``prune_env.zoo``)
needs only the base dependencies; the ``prune-env`` command lives in ``prune_env.app``.
"""

from __future__ import annotations

import gymnasium as gym

from prune_env.budgets import Budget, CallableBudget, Flops, Latency, Params
from prune_env.cost_convention import read_costs
from prune_env.deploy.reload import load_pruned
from prune_env.env import PruneEnv
from prune_env.errors import (
    AnalysisTooCostlyError,
    BudgetError,
    CheckpointNotFoundError,
    DatasetNotFoundError,
    InvalidActionError,
    InvalidRecordError,
    MissingCostError,
    NoFeasibleMaskError,
    NotApplicableError,
    PruneEnvError,
    PruningMismatchError,
    TableError,
    TableMismatchError,
    UnknownTaskError,
    UnsupportedModelError,
)
from prune_env.problem import PruneProblem
from prune_env.scored import ScoredMask, ScoringProtocol
from prune_env.tabular import Table, TabularProblem, TabularPruneEnv
from prune_env.zoo import cache_dir, get_task, list_tasks, load_checkpoint, load_dataset, pretrain

__version__ = "0.1.0"

ENV_ID = "PruneEnv-v0"
TABULAR_ENV_ID = "PruneEnv-Tabular-v0"
if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="prune_env.env:PruneEnv")
if TABULAR_ENV_ID not in gym.registry:
    gym.register(id=TABULAR_ENV_ID, entry_point="prune_env.tabular.env:TabularPruneEnv")

__all__ = [
    "ENV_ID",
    "Budget",
    "BudgetError",
    "CallableBudget",
    "CheckpointNotFoundError",
    "DatasetNotFoundError",
    "Flops",
    "InvalidActionError",
    "InvalidRecordError",
    "Latency",
    "MissingCostError",
    "NoFeasibleMaskError",
    "NotApplicableError",
    "Params",
    "PruneEnv",
    "PruneProblem",
    "PruneEnvError",
    "PruningMismatchError",
    "ScoredMask",
    "ScoringProtocol",
    "TABULAR_ENV_ID",
    "Table",
    "TableError",
    "TableMismatchError",
    "TabularProblem",
    "TabularPruneEnv",
    "UnknownTaskError",
    "AnalysisTooCostlyError",
    "UnsupportedModelError",
    "cache_dir",
    "get_task",
    "list_tasks",
    "load_pruned",
    "load_checkpoint",
    "load_dataset",
    "pretrain",
    "read_costs",
]
