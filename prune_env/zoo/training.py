"""Training and scoring networks: the one training loop, top-1 accuracy, and the device.

Every place that changes weights goes through :func:`fit`: pretraining a task's dense network
and the final fine-tune of a pruned one (both by :func:`train_epochs`), and the environment's
per-episode fine-tune (a few sampled batches). One loop means one definition of a training
step (cross-entropy, zeroed gradients, optimizer step, scheduler step) for the whole project.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prune_env.zoo.data import Split

# A source of training batches: given a generator and a batch size, returns (inputs, labels).
BatchSampler = Callable[[np.random.Generator, int], tuple[torch.Tensor, torch.Tensor]]
# A training objective: (student logits, inputs, labels) -> scalar loss.
Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(logits: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The labels alone (the default objective)."""
    return F.cross_entropy(logits, labels)


@dataclass(frozen=True)
class Distillation:
    """Knowledge distillation (Hinton et al. 2015) from a frozen teacher: ``weight`` times the
    KL divergence between the teacher's and the student's outputs softened by ``temperature``
    (scaled by temperature squared, so its gradients keep their size as the temperature
    changes), plus ``1 - weight`` times the cross-entropy with the labels."""

    teacher: nn.Module
    temperature: float = 4.0
    weight: float = 0.9

    def __post_init__(self):
        if self.temperature <= 0 or not 0.0 <= self.weight <= 1.0:
            raise ValueError(
                f"distillation needs temperature > 0 and weight in [0, 1], got {self.temperature}, {self.weight}"
            )

    def __call__(self, logits: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.teacher.eval()
        with torch.no_grad():
            soft_targets = F.softmax(self.teacher(inputs) / self.temperature, dim=1)
        soft = F.kl_div(F.log_softmax(logits / self.temperature, dim=1), soft_targets, reduction="batchmean")
        hard = F.cross_entropy(logits, labels)
        return self.weight * self.temperature**2 * soft + (1.0 - self.weight) * hard


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA where it exists; anything else is passed to ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available on this machine")
    return resolved


def accuracy(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000
) -> float:
    """Top-1 accuracy in [0, 1]; inputs and labels must already be on the model's device."""
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(labels), batch_size):
            logits = model(inputs[start : start + batch_size])
            correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    return correct / max(len(labels), 1)


def fit(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    *,
    scheduler=None,
    device: torch.device | None = None,
    loss: Loss = cross_entropy,
) -> None:
    """One pass of training over ``batches`` (cross-entropy unless ``loss`` says otherwise);
    leaves the model in eval mode."""
    device = device or next(model.parameters()).device
    model.train()
    for inputs, labels in batches:
        inputs, labels = inputs.to(device), labels.to(device)
        value = loss(model(inputs), inputs, labels)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    model.eval()


def sampled_batches(sample: BatchSampler, steps: int, rng: np.random.Generator, batch_size: int) -> Iterator:
    """``steps`` batches drawn from ``sample`` (the per-episode fine-tune's data)."""
    for _ in range(steps):
        yield sample(rng, batch_size)


def epoch_batches(
    split: Split,
    order: np.ndarray,
    batch_size: int,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Full batches of ``split`` in ``order`` (the last partial batch is dropped); ``transform``
    (augmentation, zoo splits only) acts on the raw uint8 images before normalization. A user
    task's split serves its own batches (``split.batch``)."""
    for step in range(len(split) // batch_size):
        idx = torch.from_numpy(order[step * batch_size : (step + 1) * batch_size])
        if transform is None:
            yield split.batch(idx)
            continue
        yield split.normalize(transform(split.images[idx])), split.labels[idx]


@dataclass
class EpochsResult:
    """What :func:`train_epochs` kept: the best epoch (0 = the weights it started from)."""

    best_accuracy: float
    best_epoch: int
    history: list[float] = field(default_factory=list)


def train_epochs(
    model: nn.Module,
    train: Split,
    val: tuple[torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    scheduler=None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    include_start: bool = False,
    log: Callable[[int, float], None] | None = None,
    loss: Loss = cross_entropy,
) -> EpochsResult:
    """Epochs of :func:`fit` over shuffled ``train``; the weights of the epoch with the best
    validation accuracy are loaded back into ``model``.

    Args:
        val: validation inputs and labels, on the model's device.
        rng: draws each epoch's order (seeded runs give the same batches).
        include_start: score the starting weights as epoch 0 and keep them if no epoch beats
            them (a fine-tune must never make the network worse on validation).
        log: called with (epoch, validation accuracy) after every epoch.
        loss: the objective (default cross-entropy; :class:`Distillation` for a teacher).
    """
    device = next(model.parameters()).device
    best = EpochsResult(best_accuracy=-1.0, best_epoch=0)
    best_state = None
    if include_start:
        best.best_accuracy = accuracy(model, *val)
        best_state = copy.deepcopy(model.state_dict())
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(train))
        fit(
            model,
            epoch_batches(train, order, batch_size, transform),
            optimizer,
            scheduler=scheduler,
            device=device,
            loss=loss,
        )
        acc = accuracy(model, *val)
        best.history.append(acc)
        if log is not None:
            log(epoch, acc)
        if acc > best.best_accuracy:
            best.best_accuracy, best.best_epoch = acc, epoch
            best_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return best


def recalibrate_batchnorm(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Re-estimate every BatchNorm layer's running mean and variance on ``batches`` (EagleEye's
    adaptive BatchNorm, Li et al., ECCV 2020): the statistics a pruned network inherited from
    the dense one no longer match its activations. A cumulative average over the batches, with
    only the normalization layers in train mode and no gradients; the weights do not change."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    device = next(model.parameters()).device
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts equally
        m.train()
    with torch.no_grad():
        for inputs, _ in batches:
            model(inputs.to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()
