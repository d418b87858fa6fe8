"""The task zoo and its shipped checkpoints."""

from __future__ import annotations

import json

import pytest

import prune_env
from prune_env import CheckpointNotFoundError, UnknownTaskError
from prune_env.zoo.data import load_dataset
from prune_env.zoo.tasks import checkpoint_path, file_sha256
from prune_env.zoo.training import accuracy

ALL_TASKS = [
    "fashion-mnist-mlp",
    "fashion-mnist-cnn",
    "fashion-mnist-resnet20",
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


@pytest.mark.parametrize("name", ["fashion-mnist-mlp", "fashion-mnist-cnn", "fashion-mnist-resnet20"])
def test_shipped_checkpoint_reaches_recorded_test_accuracy(name):
    model, meta = prune_env.load_checkpoint(name)
    recorded = json.loads(checkpoint_path(name).with_suffix(".json").read_text())
    assert recorded["sha256"] == meta["sha256"] == file_sha256(checkpoint_path(name))
    x, y = load_dataset("fashion-mnist").test.tensors()
    acc = accuracy(model, x, y)
    assert acc == pytest.approx(recorded["test_accuracy"], abs=2e-3)
    assert acc > {"fashion-mnist-mlp": 0.87, "fashion-mnist-cnn": 0.90, "fashion-mnist-resnet20": 0.92}[name]


def test_cifar_task_without_checkpoint_says_how_to_pretrain(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNE_ENV_CACHE", str(tmp_path))
    with pytest.raises(CheckpointNotFoundError, match=r"pretrain\('cifar10-vgg16'\)"):
        prune_env.load_checkpoint("cifar10-vgg16")
