"""prune-env: neural-network pruning under compute budgets as a Gymnasium constrained MDP.

``import prune_env`` registers ``PruneEnv-v0``; ``gym.make("prune_env:PruneEnv-v0")`` works
without the import.
"""

from __future__ import annotations

import gymnasium as gym

from prune_env.budgets import Budget, CallableBudget, Flops, Latency, Params
from prune_env.data import cache_dir, load_dataset
from prune_env.env import PruneEnv
from prune_env.errors import (
    BudgetError,
    CheckpointNotFoundError,
    DatasetNotFoundError,
    InvalidActionError,
    PruneEnvError,
    PruningMismatchError,
    UnknownTaskError,
    UnsupportedModelError,
)
from prune_env.tasks import get_task, list_tasks, load_checkpoint, pretrain

__version__ = "0.1.0"

ENV_ID = "PruneEnv-v0"
if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="prune_env.env:PruneEnv")

__all__ = [
    "ENV_ID",
    "Budget",
    "BudgetError",
    "CallableBudget",
    "CheckpointNotFoundError",
    "DatasetNotFoundError",
    "Flops",
    "InvalidActionError",
    "Latency",
    "Params",
    "PruneEnv",
    "PruneEnvError",
    "PruningMismatchError",
    "UnknownTaskError",
    "UnsupportedModelError",
    "cache_dir",
    "get_task",
    "list_tasks",
    "load_checkpoint",
    "load_dataset",
    "pretrain",
]
