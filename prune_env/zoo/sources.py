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

from prune_env.zoo.data import DEFAULT_VAL_SIZE, Split, load_dataset
from prune_env.zoo.tasks import DEFAULT_TASK, get_task, load_checkpoint
from prune_env.zoo.training import BatchSampler


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


def from_task(
    name: str | None, *, eval_samples: int, data_dir=None, val_size: int = DEFAULT_VAL_SIZE
) -> TaskSource:
    """A zoo task: its checkpoint, the first ``eval_samples`` validation images, its train split."""
    name = name or DEFAULT_TASK
    spec = get_task(name)
    dense, checkpoint = load_checkpoint(name)
    data = load_dataset(spec.dataset, data_dir, val_size=val_size)
    eval_x, eval_y = data.val.tensors(eval_samples)
    return TaskSource(name, dense, eval_x, eval_y, eval_x[:2], split_sampler(data.train), checkpoint)


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
    """Uniformly drawn batches of a zoo split."""

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
