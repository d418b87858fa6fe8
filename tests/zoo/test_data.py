"""Dataset discovery and splits."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from fake_data import write_fake_cifar10

from prune_env import DatasetNotFoundError, load_dataset
from prune_env.zoo.data import DEBIAN_FASHION_MNIST


def test_fashion_mnist_splits_are_disjoint_and_complete():
    data = load_dataset("fashion-mnist")
    assert (len(data.train), len(data.val), len(data.test)) == (55000, 5000, 10000)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    # validation is a slice of the official train set: no image of it is in train
    train_keys = {bytes(img.numpy()) for img in data.train.images[:]}
    assert not any(bytes(img.numpy()) in train_keys for img in data.val.images[:500])
    assert data.train.images.dtype == torch.uint8
    x, y = data.val.tensors(10)
    assert x.shape == (10, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert abs(float(data.train.tensors(5000)[0].mean())) < 0.1  # normalized


def test_validation_split_is_fixed_by_seed():
    a = load_dataset("fashion-mnist")
    b = load_dataset("fashion-mnist", split_seed=1)
    assert torch.equal(a.val.labels, load_dataset("fashion-mnist").val.labels)
    assert not torch.equal(a.val.images[:100], b.val.images[:100])


def test_explicit_data_dir_takes_precedence(tmp_path):
    for f in DEBIAN_FASHION_MNIST.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    data = load_dataset("fashion-mnist", tmp_path)
    assert data.source == str(tmp_path.resolve())


def test_missing_dataset_error_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNE_ENV_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        load_dataset("cifar10", tmp_path, download=False)
    monkeypatch.setattr("prune_env.zoo.data.DEBIAN_FASHION_MNIST", tmp_path / "none")
    with pytest.raises(DatasetNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        load_dataset("fashion-mnist", tmp_path / "empty", download=False)


def test_cifar10_reads_torchvision_on_disk_format(tmp_path):
    folder = write_fake_cifar10(tmp_path, per_batch=20, test=10)
    data = load_dataset("cifar10", tmp_path, val_size=10)
    assert (len(data.train), len(data.val), len(data.test)) == (90, 10, 10)
    assert data.input_shape == (3, 32, 32)
    with open(folder / "test_batch", "rb") as f:
        raw = pickle.load(f)
    np.testing.assert_array_equal(data.test.images[3].numpy().reshape(-1), raw["data"][3])
