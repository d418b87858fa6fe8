"""How a pruned network recovers its accuracy: the named fine-tune recipes of the main job.

- ``quick``: the short fine-tune every board entry got (Adam at 1e-3, a cosine schedule,
  ``finetune_epochs`` epochs, default 2), cheap enough to run after every search.
- ``full``: the task's own pretraining recipe reused (its optimizer, learning rate, weight decay,
  batch size, one-cycle schedule and augmentation), for as many epochs as the dense network was
  trained unless ``finetune_epochs`` says otherwise: what it takes to recover.

Either may distil from the dense network (``distill``). The resolved recipe is recorded in
``metrics.json`` and the report, so two runs compare only when their recipes are equal.
"""

from __future__ import annotations

from dataclasses import dataclass

from prune_env.zoo.tasks import TASKS

RECIPES = ("quick", "full")
QUICK_EPOCHS, QUICK_LR, QUICK_BATCH = 2, 1e-3, 128


@dataclass(frozen=True)
class RecoveryRecipe:
    """A fine-tune recipe, resolved for one task."""

    name: str
    epochs: int
    optimizer: str  # "adam" or "sgd" (Nesterov, momentum 0.9)
    lr: float
    weight_decay: float
    batch_size: int
    schedule: str  # "cosine" or "one-cycle"
    augment: bool  # random crop (pad 4) + horizontal flip, as the task's pretraining
    distill: bool


def resolve_recipe(name: str, task: str, epochs: int | None = None, distill: bool = False) -> RecoveryRecipe:
    """The recipe ``name`` for ``task``; ``epochs`` overrides its length. A task without a
    pretraining recipe (your own model) gets the quick recipe's optimizer under ``full``."""
    if name not in RECIPES:
        raise ValueError(f"unknown recovery recipe {name!r}; known: {', '.join(RECIPES)}")
    if epochs is not None and int(epochs) < 0:
        raise ValueError(f"finetune_epochs must be >= 0, got {epochs}")
    pretrain = TASKS[task].recipe if task in TASKS else None
    if name == "quick" or pretrain is None:
        return RecoveryRecipe(
            name=name, epochs=QUICK_EPOCHS if epochs is None else int(epochs), optimizer="adam", lr=QUICK_LR,
            weight_decay=0.0, batch_size=QUICK_BATCH, schedule="cosine", augment=False, distill=distill,
        )  # fmt: skip
    return RecoveryRecipe(
        name=name, epochs=pretrain.epochs if epochs is None else int(epochs), optimizer=pretrain.optimizer,
        lr=pretrain.lr, weight_decay=pretrain.weight_decay, batch_size=pretrain.batch_size, schedule="one-cycle",
        augment=pretrain.augment, distill=distill,
    )  # fmt: skip
