"""The task zoo: a name bundles a dataset, an architecture and a trained checkpoint.

The Fashion-MNIST tasks ship their checkpoints inside the package (made by :func:`pretrain`
with the recorded seed); the CIFAR-10 tasks are pretrained on the user's machine (a GPU is
advised) and cached under ``cache_dir()/checkpoints``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prune_env import models
from prune_env.data import DEFAULT_VAL_SIZE, cache_dir, load_dataset
from prune_env.errors import CheckpointNotFoundError, UnknownTaskError
from prune_env.evaluate import accuracy, resolve_device

SHIPPED_CHECKPOINTS = Path(__file__).parent / "checkpoints"


@dataclass(frozen=True)
class TrainRecipe:
    """How :func:`pretrain` trains a task's dense network."""

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


def _augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop with 4 pixels of zero padding, and random horizontal flip."""
    n, _, h, w = images.shape
    padded = F.pad(images, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=generator)
    dy = torch.randint(0, 9, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).view(n, 1, 1, w)
    batch = torch.arange(n).view(n, 1, 1, 1)
    channels = torch.arange(images.shape[1]).view(1, -1, 1, 1)
    cropped = padded[batch, channels, rows, cols]
    flip = torch.rand(n, generator=generator) < 0.5
    cropped[flip] = cropped[flip].flip(-1)
    return cropped


def pretrain(
    name: str,
    *,
    epochs: int | None = None,
    seed: int = 0,
    data_dir: str | Path | None = None,
    val_size: int = DEFAULT_VAL_SIZE,
    device: str = "auto",
    out: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Train a task's dense network from scratch, keep the best epoch by validation accuracy,
    evaluate it on the test split and save it (to ``out`` or :func:`checkpoint_path`).

    Seeded end to end: the same seed, device and library versions give the same weights.
    ``val_size`` images of the training set are held out for model selection (tiny test data
    needs a smaller one).
    Returns the metadata written beside the weights.
    """
    task = get_task(name)
    recipe = task.recipe
    epochs = recipe.epochs if epochs is None else int(epochs)
    dev = resolve_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    data = load_dataset(task.dataset, data_dir, val_size=val_size)
    model = task.build().to(dev)
    if recipe.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    else:
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=recipe.lr,
            momentum=0.9,
            weight_decay=recipe.weight_decay,
            nesterov=True,
        )
    steps_per_epoch = len(data.train) // recipe.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, total_steps=max(1, epochs * steps_per_epoch)
    )
    val_x, val_y = (t.to(dev) for t in data.val.tensors())
    best_acc, best_state, history = -1.0, None, []
    start = time.time()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(data.train))
        for step in range(steps_per_epoch):
            idx = torch.from_numpy(order[step * recipe.batch_size : (step + 1) * recipe.batch_size])
            images = data.train.images[idx]
            if recipe.augment:
                images = _augment(images, generator)
            inputs, labels = data.train.normalize(images).to(dev), data.train.labels[idx].to(dev)
            loss = F.cross_entropy(model(inputs), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        val_acc = accuracy(model, val_x, val_y)
        history.append(val_acc)
        if progress:
            print(f"[{name}] epoch {epoch + 1}/{epochs}: val acc {val_acc:.4f} ({time.time() - start:.0f}s)")
        if val_acc > best_acc:
            best_acc = val_acc
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    test_x, test_y = (t.to(dev) for t in data.test.tensors())
    meta = {
        "task": name,
        "architecture": task.architecture,
        "val_accuracy": best_acc,
        "test_accuracy": accuracy(model, test_x, test_y),
        "val_history": history,
        "seed": seed,
        "val_size": val_size,
        "epochs": epochs,
        "recipe": asdict(recipe),
        "device": str(dev),
        "torch": str(torch.__version__),
        "train_seconds": round(time.time() - start, 1),
    }
    path = Path(out) if out is not None else checkpoint_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": best_state, "meta": meta}, path)
    path.with_suffix(".json").write_text(json.dumps({**meta, "sha256": file_sha256(path)}, indent=2) + "\n")
    return meta
