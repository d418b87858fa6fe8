"""Recovery recipes: `quick` is the boards' short fine-tune, `full` the task's pretraining recipe
(optimizer, learning rate, weight decay, batch, one-cycle schedule, augmentation), both recorded."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from prune_env.app import PruneConfig, finetune_network
from prune_env.app import pipeline as pipeline_module
from prune_env.app.cli import main
from prune_env.app.recovery import resolve_recipe
from prune_env.zoo.data import Dataset, Split


def test_recipes_resolve_from_the_tasks_pretraining():
    quick = resolve_recipe("quick", "fashion-mnist-resnet20")
    assert (quick.optimizer, quick.lr, quick.epochs, quick.schedule, quick.augment) == (
        "adam",
        1e-3,
        2,
        "cosine",
        False,
    )
    full = resolve_recipe(
        "full", "fashion-mnist-resnet20"
    )  # pretrained: SGD 0.1, wd 5e-4, augmented, 15 epochs
    assert (full.optimizer, full.lr, full.weight_decay, full.epochs, full.schedule, full.augment) == (
        "sgd", 0.1, 5e-4, 15, "one-cycle", True)  # fmt: skip
    assert resolve_recipe("full", "fashion-mnist-cnn", epochs=3).epochs == 3
    assert resolve_recipe("full", "my_model.py:build").optimizer == "adam"  # no pretraining recipe known
    with pytest.raises(ValueError, match="unknown recovery recipe"):
        resolve_recipe("long", "fashion-mnist-cnn")
    with pytest.raises(ValueError, match="recipe must be"):
        PruneConfig(recipe="long")


def _tiny_dataset(n: int = 300) -> Dataset:
    g = torch.Generator().manual_seed(0)

    def split(count):
        return Split(torch.randint(0, 256, (count, 1, 8, 8), dtype=torch.uint8, generator=g),
                     torch.randint(0, 3, (count,), generator=g), (0.5,), (0.25,))  # fmt: skip

    return Dataset("tiny", split(n), split(16), split(16), 3, "random")


def test_the_full_recipe_trains_with_the_tasks_optimizer_schedule_and_augmentation(monkeypatch):
    seen = {}
    real_sgd, real_cycle, real_augment = (
        torch.optim.SGD,
        torch.optim.lr_scheduler.OneCycleLR,
        pipeline_module.augment,
    )

    def sgd(params, **kwargs):
        seen["sgd"] = kwargs
        return real_sgd(params, **kwargs)

    def cycle(optimizer, **kwargs):
        seen["one-cycle"] = kwargs
        return real_cycle(optimizer, **kwargs)

    def augment(x, generator):
        seen["augmented"] = seen.get("augmented", 0) + 1
        return real_augment(x, generator)

    monkeypatch.setattr(torch.optim, "SGD", sgd)
    monkeypatch.setattr(torch.optim.lr_scheduler, "OneCycleLR", cycle)
    monkeypatch.setattr(pipeline_module, "augment", augment)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    cfg = PruneConfig(task="fashion-mnist-resnet20", recipe="full", finetune_epochs=2, progress=False)
    result = finetune_network(model, _tiny_dataset(), cfg)
    assert seen["sgd"] == {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True}
    assert seen["one-cycle"] == {"max_lr": 0.1, "total_steps": 2 * (300 // 128)}
    assert len(result.history) == 2 and seen["augmented"] >= 1


def test_the_recipe_is_recorded_in_metrics_and_report(tmp_path):
    out = tmp_path / "run"
    args = ["prune", "--task", "fashion-mnist-mlp", "--agent", "uniform-l1", "--recipe", "full", "--finetune-epochs",
            "1", "--eval-samples", "200", "--episode-finetune", "0", "--limit", "0.5", "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["recovery"]["name"] == "full" and metrics["finetune_epochs"] == 1
    assert metrics["recovery"]["optimizer"] == "adam" and metrics["recovery"]["schedule"] == "one-cycle"
    assert "recipe `full`" in (out / "report.md").read_text()
