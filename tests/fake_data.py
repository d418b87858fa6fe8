"""Random stand-ins for datasets that are not on this machine, in their real on-disk formats."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_fake_cifar10(root: Path, per_batch: int, test: int, seed: int = 0) -> Path:
    """torchvision's ``cifar-10-batches-py`` layout (5 training pickles and a test pickle) under
    ``root``, filled with random images and labels. Returns the batches folder."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test)]:
        entry = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "labels": rng.integers(0, 10, n).tolist(),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    return folder
