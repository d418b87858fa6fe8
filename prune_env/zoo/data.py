"""Datasets of the task zoo: where they are looked for, and their three disjoint splits.

Fashion-MNIST is looked for, in order, in an explicit ``data_dir``, the user cache
(:func:`cache_dir`), Debian's ``dataset-fashion-mnist`` copy and, where the network allows,
torchvision's download. CIFAR-10 is read from torchvision's on-disk format
(``cifar-10-batches-py``), from ``data_dir`` or the user cache, or downloaded by torchvision.

Splits: *train* is the official training set minus a fixed, seeded *validation* slice; *test*
is the official test set. The environment's reward only ever sees validation images.
"""

from __future__ import annotations

import functools
import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from prune_env.errors import DatasetNotFoundError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DATASET_STATS = {  # per-channel mean and std of the official training sets
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
DEFAULT_VAL_SIZE = 5000
DEFAULT_SPLIT_SEED = 0


def cache_dir() -> Path:
    """The user cache: ``$PRUNE_ENV_CACHE``, else ``$XDG_CACHE_HOME/prune_env``, else
    ``~/.cache/prune_env``."""
    if os.environ.get("PRUNE_ENV_CACHE"):
        return Path(os.environ["PRUNE_ENV_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "prune_env"


@dataclass(frozen=True)
class Split:
    """Images kept as uint8 (N, C, H, W) and int64 labels; normalized on access."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def normalize(self, images_uint8: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (images_uint8.float() / 255.0 - mean) / std

    def tensors(self, count: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``count`` (default all) examples as normalized float inputs and labels."""
        end = len(self) if count is None else min(int(count), len(self))
        return self.normalize(self.images[:end]), self.labels[:end]

    def batch(self, indices: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.normalize(self.images[idx]), self.labels[idx]


@dataclass(frozen=True)
class Dataset:
    """A dataset's three disjoint splits and what a model needs to know about it."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    source: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    val_size: int = DEFAULT_VAL_SIZE,
    split_seed: int = DEFAULT_SPLIT_SEED,
    download: bool | None = None,
) -> Dataset:
    """Load ``"fashion-mnist"`` or ``"cifar10"`` with train / validation / test splits.

    ``download=None`` downloads unless ``$PRUNE_ENV_NO_DOWNLOAD`` is set (offline machines).
    Results are cached in-process, so many environments share one copy of the images.
    """
    if download is None:
        download = not os.environ.get("PRUNE_ENV_NO_DOWNLOAD")
    key = None if data_dir is None else str(Path(data_dir).expanduser().resolve())
    return _load_dataset_cached(name, key, int(val_size), int(split_seed), bool(download))


@functools.lru_cache(maxsize=4)
def _load_dataset_cached(
    name: str, data_dir: str | None, val_size: int, split_seed: int, download: bool
) -> Dataset:
    if name == "fashion-mnist":
        (train_x, train_y, test_x, test_y), source = _find_fashion_mnist(data_dir, download)
    elif name == "cifar10":
        (train_x, train_y, test_x, test_y), source = _find_cifar10(data_dir, download)
    else:
        raise DatasetNotFoundError(f"unknown dataset {name!r}; expected 'fashion-mnist' or 'cifar10'")
    if not 0 < val_size < len(train_y):
        raise ValueError(f"val_size must be in (0, {len(train_y)}), got {val_size}")
    order = np.random.default_rng(split_seed).permutation(len(train_y))
    val_idx, train_idx = np.sort(order[:val_size]), np.sort(order[val_size:])
    mean, std = DATASET_STATS[name]

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        return Split(torch.from_numpy(np.array(x)), torch.from_numpy(y.astype(np.int64)), mean, std)

    return Dataset(
        name=name,
        train=split(train_x[train_idx], train_y[train_idx]),
        val=split(train_x[val_idx], train_y[val_idx]),
        test=split(test_x, test_y),
        num_classes=10,
        source=source,
    )


# --- Fashion-MNIST ---------------------------------------------------------------------------


def _read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): big-endian magic, dims, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic >> 8 != 0x08:
        raise DatasetNotFoundError(f"{path} is not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(shape)


def _fashion_mnist_in(folder: Path) -> dict[str, Path] | None:
    for candidate in (folder, folder / "FashionMNIST" / "raw", folder / "fashion-mnist"):
        found = {}
        for key, stem in FASHION_MNIST_FILES.items():
            path = next((p for p in (candidate / f"{stem}.gz", candidate / stem) if p.is_file()), None)
            if path is None:
                break
            found[key] = path
        else:
            return found
    return None


def _find_fashion_mnist(data_dir: str | None, download: bool):
    places = ([Path(data_dir)] if data_dir else []) + [
        cache_dir() / "fashion-mnist",
        DEBIAN_FASHION_MNIST,
    ]
    for place in places:
        files = _fashion_mnist_in(place)
        if files:
            arrays = [_read_idx(files[k]) for k in FASHION_MNIST_FILES]
            train_x, train_y, test_x, test_y = arrays
            return (train_x[:, None], train_y, test_x[:, None], test_y), str(place)
    target = cache_dir() / "fashion-mnist"
    return _download_or_fail(
        "Fashion-MNIST", places, download, lambda: _fetch("FashionMNIST", target, splits=(True, False)),
        lambda: _find_fashion_mnist(str(target), download=False),
    )  # fmt: skip


HOW_TO_GET = {
    "Fashion-MNIST": "Install Debian's copy with `apt-get install -y dataset-fashion-mnist`, or put the four "
    "idx files in a folder and pass data_dir=...",
    "CIFAR-10": "Download the python version (cifar-10-python.tar.gz), extract it so that "
    "DIR/cifar-10-batches-py exists, and pass data_dir=DIR",
}


def _fetch(dataset_class: str, target: Path, splits: tuple[bool, ...]) -> None:
    """torchvision's download of a dataset into ``target``."""
    import torchvision.datasets  # only here: it takes seconds to import and is only for downloads

    for train in splits:
        getattr(torchvision.datasets, dataset_class)(str(target), train=train, download=True)


def _download_or_fail(name: str, places, download: bool, fetch, find_again):
    """Run a torchvision download and read what it wrote; else a DatasetNotFoundError saying
    where we looked, why the download did not help, and what to do."""
    if not download:
        reason = "download disabled"
    else:
        try:
            fetch()
            return find_again()
        except DatasetNotFoundError:
            raise
        except Exception as exc:  # no network, no torchvision, a server error, ...
            reason = f"download failed ({type(exc).__name__}: {exc})"
    raise _not_found(name, places, reason, HOW_TO_GET[name])


def _not_found(name: str, places, reason: str, how_to: str) -> DatasetNotFoundError:
    searched = ", ".join(str(p) for p in places)
    return DatasetNotFoundError(f"{name} not found (searched {searched}; {reason}). {how_to}")


# --- CIFAR-10 --------------------------------------------------------------------------------


def _cifar_batches_in(folder: Path) -> Path | None:
    for candidate in (folder / "cifar-10-batches-py", folder):
        if (candidate / "data_batch_1").is_file() and (candidate / "test_batch").is_file():
            return candidate
    return None


def read_cifar10_batches(folder: Path):
    """Read torchvision's on-disk CIFAR-10 (python pickles) into uint8 (N, 3, 32, 32) arrays."""

    def load(name: str):
        with open(folder / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return images, np.asarray(entry["labels"], dtype=np.int64)

    parts = [load(f"data_batch_{i}") for i in range(1, 6)]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    test_x, test_y = load("test_batch")
    return train_x, train_y, test_x, test_y


def _find_cifar10(data_dir: str | None, download: bool):
    places = ([Path(data_dir)] if data_dir else []) + [cache_dir() / "cifar10"]
    for place in places:
        folder = _cifar_batches_in(place)
        if folder is not None:
            return read_cifar10_batches(folder), str(folder)
    target = cache_dir() / "cifar10"
    return _download_or_fail(
        "CIFAR-10", places, download, lambda: _fetch("CIFAR10", target, splits=(True,)),
        lambda: _find_cifar10(str(target), download=False),
    )  # fmt: skip
