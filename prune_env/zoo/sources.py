"""Where an environment's network and data come from: a zoo task, or the user's own model.

Both become one :class:`TaskSource`: the trained network, the validation images the reward is
scored on, a sampler of training batches for fine-tuning, example inputs for tracing, and the
checkpoint's metadata. The environment only ever sees this record, so a new kind of source
(a user's task file, say) needs no change to the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from prune_env.errors import UnknownTaskError
from prune_env.zoo.data import DEFAULT_SPLIT_SEED, DEFAULT_VAL_SIZE, Dataset, Split, load_dataset
from prune_env.zoo.tasks import DEFAULT_TASK, TASKS, get_task, load_checkpoint
from prune_env.zoo.training import BatchSampler
from prune_env.zoo.user_tasks import (
    UserData,
    canonical_reference,
    entry_point_tasks,
    is_reference,
    load_user_task,
)


@dataclass
class TaskSource:
    """A trained network with the data a pruning environment scores and fine-tunes it on."""

    name: str
    model: nn.Module
    eval_inputs: torch.Tensor
    eval_labels: torch.Tensor
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...]
    sample_train: BatchSampler | None = None
    checkpoint: dict = field(default_factory=dict)


def check_task(name: str | None) -> str:
    """The task's name as runs record it (a file reference made absolute), after checking that
    it exists; a user task is imported and checked here, before any work is done.

    Raises:
        UnknownTaskError: neither a zoo task, an entry-point task nor a ``FILE.py:FUNCTION`` /
            ``module:FUNCTION`` reference.
        InvalidTaskError: a user task that cannot be imported or returns no usable task.
    """
    name = name or DEFAULT_TASK
    if name in TASKS:
        return name
    if not is_reference(name) and name not in entry_point_tasks():
        named = [*TASKS, *entry_point_tasks()]
        raise UnknownTaskError(
            f"unknown task {name!r}; known tasks: {', '.join(named)}; or your own as FILE.py:FUNCTION "
            f"or package.module:FUNCTION"
        )
    load_user_task(name)
    return canonical_reference(name)


def task_dataset(
    name: str | None, data_dir=None, val_size: int = DEFAULT_VAL_SIZE, split_seed: int = DEFAULT_SPLIT_SEED
) -> Dataset | UserData:
    """A task's train / validation / test splits (a user task's own; ``data_dir``, ``val_size``
    and ``split_seed`` apply to zoo tasks only)."""
    name = check_task(name)
    if name in TASKS:
        return load_dataset(get_task(name).dataset, data_dir, val_size=val_size, split_seed=split_seed)
    return load_user_task(name).data


def from_task(
    name: str | None, *, eval_samples: int, data_dir=None, val_size: int = DEFAULT_VAL_SIZE
) -> TaskSource:
    """A zoo or user task: its trained network, the first ``eval_samples`` validation images,
    its train split."""
    name = check_task(name)
    if name in TASKS:
        dense, checkpoint = load_checkpoint(name)
        example = None
    else:
        user = load_user_task(name)
        dense, checkpoint, example = user.model, dict(user.checkpoint), user.example_inputs
    data = task_dataset(name, data_dir, val_size)
    eval_x, eval_y = data.val.tensors(eval_samples)
    example = eval_x[:2] if example is None else example
    return TaskSource(name, dense, eval_x, eval_y, example, split_sampler(data.train), checkpoint)


def from_model(
    model: nn.Module,
    *,
    eval_data,
    eval_samples: int,
    train_data=None,
    example_inputs=None,
    name: str | None = None,
) -> TaskSource:
    """The user's own trained network and data.

    Args:
        eval_data: ``(inputs, labels)`` tensors or an iterable of such batches (a DataLoader).
        train_data: the same forms, for fine-tuning; ``None`` disables fine-tuning.
        example_inputs: a batch for tracing; default the first 2 evaluation inputs.
    """
    if eval_data is None:
        raise ValueError("a custom model needs eval_data=(inputs, labels) or a DataLoader")
    eval_x, eval_y = materialize(eval_data, int(eval_samples))
    sampler = data_sampler(train_data) if train_data is not None else None
    example = eval_x[:2] if example_inputs is None else example_inputs
    return TaskSource(name or "custom", model, eval_x, eval_y, example, sampler, {})


def _is_tensor_pair(data) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data)


def materialize(data, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` examples of ``(inputs, labels)`` tensors or a DataLoader."""
    if _is_tensor_pair(data):
        return data[0][:count], data[1][:count]
    inputs, labels, seen = [], [], 0
    try:
        for x, y in data:
            inputs.append(x)
            labels.append(y)
            seen += len(y)
            if seen >= count:
                break
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "eval_data must be (inputs, labels) tensors or an iterable of (inputs, labels) batches"
        ) from exc
    if not inputs:
        raise ValueError("eval_data is empty")
    return torch.cat(inputs)[:count], torch.cat(labels)[:count]


def split_sampler(split: Split) -> BatchSampler:
    """Uniformly drawn batches of a split (zoo or user)."""

    def sample(rng: np.random.Generator, batch_size: int):
        return split.batch(rng.integers(0, len(split), size=batch_size))

    return sample


def data_sampler(data) -> BatchSampler:
    """Batches of user data: drawn uniformly from tensors, or the loader's next batch in turn."""
    if _is_tensor_pair(data):
        inputs, labels = data

        def sample(rng: np.random.Generator, batch_size: int):
            idx = torch.from_numpy(rng.integers(0, len(labels), size=batch_size))
            return inputs[idx], labels[idx]

        return sample

    iterator = iter(())

    def sample_loader(rng: np.random.Generator, batch_size: int):
        nonlocal iterator
        try:
            return next(iterator)
        except StopIteration:
            iterator = iter(data)
            return next(iterator)

    return sample_loader
