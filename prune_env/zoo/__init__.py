"""The task zoo: datasets and their splits, architectures, trained checkpoints, pretraining,
and the one training loop. It imports nothing of prune_env but its error classes."""

from prune_env.zoo.data import cache_dir, load_dataset
from prune_env.zoo.pretrain import pretrain
from prune_env.zoo.tasks import (
    DEFAULT_TASK,
    TASKS,
    Task,
    checkpoint_path,
    get_task,
    list_tasks,
    load_checkpoint,
)

__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "Task",
    "cache_dir",
    "checkpoint_path",
    "get_task",
    "list_tasks",
    "load_checkpoint",
    "load_dataset",
    "pretrain",
]
