"""The task zoo and its shipped checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

import prune_env
from prune_env import CheckpointNotFoundError, UnknownTaskError
from prune_env.zoo.data import load_dataset
from prune_env.zoo.tasks import FAMILY, checkpoint_path, file_sha256
from prune_env.zoo.training import accuracy

ALL_TASKS = [
    "fashion-mnist-mlp",
    "fashion-mnist-cnn",
    "fashion-mnist-resnet20",
    "fashion-mnist-cnn-w0.5",
    "fashion-mnist-resnet8",
    "fashion-mnist-resnet14",
    "cifar10-vgg11",
    "cifar10-vgg16",
    "cifar10-vgg19",
    "cifar10-resnet18",
    "cifar10-resnet56",
]


def test_list_tasks():
    assert prune_env.list_tasks() == ALL_TASKS


def test_unknown_task_names_the_known_ones():
    with pytest.raises(UnknownTaskError, match="fashion-mnist-cnn") as err:
        prune_env.PruneEnv("mnist-transformer")
    assert "cifar10-resnet56" in str(err.value)


SHIPPED = {  # the least test accuracy each shipped checkpoint must reach
    "fashion-mnist-mlp": 0.87,
    "fashion-mnist-cnn": 0.90,
    "fashion-mnist-resnet20": 0.92,
    "fashion-mnist-cnn-w0.5": 0.89,
    "fashion-mnist-resnet8": 0.89,
    "fashion-mnist-resnet14": 0.90,
}


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_checkpoint_reaches_recorded_test_accuracy(name):
    model, meta = prune_env.load_checkpoint(name)
    recorded = json.loads(checkpoint_path(name).with_suffix(".json").read_text())
    assert recorded["sha256"] == meta["sha256"] == file_sha256(checkpoint_path(name))
    x, y = load_dataset("fashion-mnist").test.tensors()
    acc = accuracy(model, x, y)
    assert acc == pytest.approx(recorded["test_accuracy"], abs=2e-3)
    assert acc > SHIPPED[name]


def _depth(name: str) -> int:
    """Weight layers on the main path: convolutions but the 1x1 shortcuts, and linear layers."""
    model, _ = prune_env.load_checkpoint(name)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    return len(convs) + sum(isinstance(m, torch.nn.Linear) for m in model.modules())


def test_the_family_split_holds_out_a_deeper_network_and_a_new_kind():
    train, held_out = FAMILY["train"], FAMILY["held-out"]
    assert not set(train) & set(held_out) and len(train) + len(held_out) >= 6
    assert all(prune_env.zoo.tasks.get_task(t).shipped for t in (*train, *held_out))
    deepest = max(_depth(t) for t in train)
    assert any(_depth(t) > deepest for t in held_out)
    kinds = {
        t: {type(m).__name__ for m in prune_env.load_checkpoint(t)[0].modules()} for t in (*train, *held_out)
    }
    assert any("Conv2d" not in kinds[t] for t in held_out) and all("Conv2d" in kinds[t] for t in train)


def test_cifar_task_without_checkpoint_says_how_to_pretrain(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNE_ENV_CACHE", str(tmp_path))
    with pytest.raises(CheckpointNotFoundError, match=r"pretrain\('cifar10-vgg16'\)"):
        prune_env.load_checkpoint("cifar10-vgg16")
