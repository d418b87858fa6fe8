"""The task zoo: a name bundles a dataset, an architecture and a trained checkpoint.

The Fashion-MNIST tasks ship their checkpoints inside the package (made by
:func:`prune_env.zoo.pretrain.pretrain` with the recorded seed); the CIFAR-10 tasks are
pretrained on the user's machine (a GPU is advised) and cached under ``cache_dir()/checkpoints``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from prune_env.errors import CheckpointNotFoundError, UnknownTaskError
from prune_env.zoo import models
from prune_env.zoo.data import cache_dir

SHIPPED_CHECKPOINTS = Path(__file__).parent / "checkpoints"


@dataclass(frozen=True)
class TrainRecipe:
    """How :func:`prune_env.zoo.pretrain.pretrain` trains a task's dense network."""

    epochs: int
    batch_size: int
    optimizer: str  # "adam" or "sgd"
    lr: float
    weight_decay: float = 0.0
    augment: bool = False  # random crop (pad 4) + horizontal flip, CIFAR style


@dataclass(frozen=True)
class Task:
    name: str
    dataset: str
    architecture: str
    build: Callable[[], nn.Module]
    recipe: TrainRecipe
    shipped: bool
    description: str


_CIFAR_RECIPE = TrainRecipe(
    epochs=60, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4, augment=True
)

TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("fashion-mnist-mlp", "fashion-mnist", "LeNet-300-100", models.LeNet300100,
             TrainRecipe(epochs=8, batch_size=128, optimizer="adam", lr=1e-3), True,
             "LeNet-300-100 MLP on Fashion-MNIST (2 prunable layers)"),
        Task("fashion-mnist-cnn", "fashion-mnist", "FashionCNN", models.FashionCNN,
             TrainRecipe(epochs=8, batch_size=128, optimizer="adam", lr=1e-3), True,
             "small VGG-style CNN with BatchNorm on Fashion-MNIST (6 prunable groups); the default"),
        Task("fashion-mnist-resnet20", "fashion-mnist", "ResNet-20", lambda: models.resnet20(in_channels=1),
             TrainRecipe(epochs=15, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4, augment=True),
             True, "CIFAR ResNet-20 (1x1 shortcuts) on Fashion-MNIST (12 groups, residual streams coupled)"),
        Task("fashion-mnist-cnn-w0.5", "fashion-mnist", "FashionCNN x0.5", lambda: models.FashionCNN(width=0.5),
             TrainRecipe(epochs=8, batch_size=128, optimizer="adam", lr=1e-3), True,
             "FashionCNN at half width (8-8|16-16|32, fc 64; 6 prunable groups)"),
        Task("fashion-mnist-resnet8", "fashion-mnist", "ResNet-8", lambda: models.resnet8(in_channels=1),
             TrainRecipe(epochs=10, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4, augment=True),
             True, "CIFAR ResNet-8 (one block per stage) on Fashion-MNIST (6 groups, residual streams coupled)"),
        Task("fashion-mnist-resnet14", "fashion-mnist", "ResNet-14", lambda: models.resnet14(in_channels=1),
             TrainRecipe(epochs=6, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4, augment=True),
             True, "CIFAR ResNet-14 (two blocks per stage) on Fashion-MNIST (9 groups, residual streams coupled)"),
        Task("cifar10-vgg11", "cifar10", "VGG-11-BN", lambda: models.CifarVGG(11), _CIFAR_RECIPE, False,
             "CIFAR-style VGG-11 with BatchNorm on CIFAR-10 (8 groups)"),
        Task("cifar10-vgg16", "cifar10", "VGG-16-BN", lambda: models.CifarVGG(16), _CIFAR_RECIPE, False,
             "CIFAR-style VGG-16 with BatchNorm on CIFAR-10 (13 groups)"),
        Task("cifar10-vgg19", "cifar10", "VGG-19-BN", lambda: models.CifarVGG(19), _CIFAR_RECIPE, False,
             "CIFAR-style VGG-19 with BatchNorm on CIFAR-10 (16 groups)"),
        Task("cifar10-resnet18", "cifar10", "ResNet-18", models.resnet18, _CIFAR_RECIPE, False,
             "CIFAR-style ResNet-18 on CIFAR-10 (12 coupled groups)"),
        Task("cifar10-resnet56", "cifar10", "ResNet-56", models.resnet56, _CIFAR_RECIPE, False,
             "ResNet-56 (1x1 shortcuts) on CIFAR-10 (30 coupled groups)"),
    ]
}  # fmt: skip
DEFAULT_TASK = "fashion-mnist-cnn"

# The Fashion-MNIST family a policy is trained on and tested against. Held out: networks
# deeper than every training member (ResNet-14 and ResNet-20; the deepest training member,
# ResNet-8, has 8 layers) and one of a kind no training member has (the MLP has no
# convolution), so a transfer result says how a policy does on a network it has never seen.
FAMILY: dict[str, tuple[str, ...]] = {
    "train": ("fashion-mnist-cnn-w0.5", "fashion-mnist-cnn", "fashion-mnist-resnet8"),
    "held-out": ("fashion-mnist-resnet14", "fashion-mnist-resnet20", "fashion-mnist-mlp"),
}


def list_tasks() -> list[str]:
    """Names of the zoo's tasks."""
    return list(TASKS)


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]


def checkpoint_path(name: str) -> Path:
    """Where a task's checkpoint lives: inside the package if shipped, else in the user cache."""
    task = get_task(name)
    folder = SHIPPED_CHECKPOINTS if task.shipped else cache_dir() / "checkpoints"
    return folder / f"{name}.pt"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint(name: str, path: str | Path | None = None) -> tuple[nn.Module, dict]:
    """The task's trained network (eval mode, CPU) and its metadata (accuracies, hash, recipe)."""
    task = get_task(name)
    path = Path(path) if path is not None else checkpoint_path(name)
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"no checkpoint for task {name!r} at {path}. Train one with "
            f"`prune_env.pretrain({name!r})` (a GPU is advised for CIFAR-10 tasks)"
        )
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = task.build()
    model.load_state_dict(payload["state_dict"])
    model.eval()
    meta = dict(payload.get("meta", {}))
    meta["sha256"] = file_sha256(path)
    meta["path"] = str(path)
    return model, meta
