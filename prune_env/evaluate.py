"""Accuracy of a network on a fixed set of examples, and a short optional fine-tune."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# A source of training batches: given a generator and a batch size, returns (inputs, labels).
BatchSampler = Callable[[np.random.Generator, int], tuple[torch.Tensor, torch.Tensor]]


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


def finetune(
    model: nn.Module,
    sample_batch: BatchSampler,
    steps: int,
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    lr: float = 3e-4,
    device: torch.device | None = None,
) -> None:
    """``steps`` Adam steps on batches from ``sample_batch`` (the paper's per-episode fine-tune)."""
    if steps <= 0:
        return
    device = device or next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        inputs, labels = sample_batch(rng, batch_size)
        loss = F.cross_entropy(model(inputs.to(device)), labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
