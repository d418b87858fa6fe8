"""Training a task's dense network from scratch, with the recipe recorded beside the weights."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from prune_env.zoo.data import DEFAULT_VAL_SIZE, load_dataset
from prune_env.zoo.tasks import TrainRecipe, checkpoint_path, file_sha256, get_task
from prune_env.zoo.training import accuracy, resolve_device, train_epochs


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
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


def _optimizer(model: torch.nn.Module, recipe: TrainRecipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay, nesterov=True
    )


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
    evaluate it on the test split and save it (to ``out`` or the task's checkpoint path).

    Seeded end to end: the same seed, device and library versions give the same weights.
    ``val_size`` images of the training set are held out for model selection (tiny test data
    needs a smaller one). Returns the metadata written beside the weights.
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
    optimizer = _optimizer(model, recipe)
    steps_per_epoch = len(data.train) // recipe.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, total_steps=max(1, epochs * steps_per_epoch)
    )
    val = tuple(t.to(dev) for t in data.val.tensors())
    start = time.time()

    def log(epoch: int, acc: float) -> None:
        if progress:
            print(f"[{name}] epoch {epoch}/{epochs}: val acc {acc:.4f} ({time.time() - start:.0f}s)")

    result = train_epochs(
        model, data.train, val, optimizer, epochs=epochs, batch_size=recipe.batch_size, rng=rng,
        scheduler=scheduler, transform=(lambda x: augment(x, generator)) if recipe.augment else None, log=log,
    )  # fmt: skip
    test_x, test_y = (t.to(dev) for t in data.test.tensors())
    meta = {
        "task": name,
        "architecture": task.architecture,
        "val_accuracy": result.best_accuracy,
        "test_accuracy": accuracy(model, test_x, test_y),
        "val_history": result.history,
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
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "meta": meta}, path)
    path.with_suffix(".json").write_text(json.dumps({**meta, "sha256": file_sha256(path)}, indent=2) + "\n")
    return meta
