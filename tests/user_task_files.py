"""Task files a user would write (``FILE.py:FUNCTION``), written by tests into a temp folder.

The file is self-contained, as a user's is: it defines its network, loads trained weights and
returns the data. The weights come from training that same network for a second on a
Fashion-MNIST subset (:func:`train_small_mlp`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import prune_env

MODEL_SOURCE = '''
import torch
from torch import nn


class SmallMLP(nn.Module):
    """784 -> 48 -> 24 -> 10: two prunable groups."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 48), nn.ReLU(), nn.Linear(48, 24), nn.ReLU())
        self.classifier = nn.Linear(24, 10)

    def forward(self, x):
        return self.classifier(self.body(x))
'''

TASK_SOURCE = """
from torch.utils.data import DataLoader, TensorDataset

import prune_env

WEIGHTS = {weights!r}


def make():
    data = prune_env.load_dataset("fashion-mnist")
    model = SmallMLP()
    model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    train = TensorDataset(*data.train.tensors(3000))
    return {{
        "model": model.eval(),
        "train": DataLoader(train, batch_size=64, shuffle=True),  # a DataLoader
        "val": TensorDataset(*data.val.tensors(600)),  # a map-style Dataset
        "test": data.test.tensors(600),  # (inputs, labels) tensors
    }}
"""


def small_mlp_class() -> type[nn.Module]:
    namespace: dict = {}
    exec(MODEL_SOURCE, namespace)
    return namespace["SmallMLP"]


def train_small_mlp(seed: int = 0, images: int = 3000) -> nn.Module:
    """Two epochs of Adam on the first ``images`` training images (about a second)."""
    torch.manual_seed(seed)
    x, y = prune_env.load_dataset("fashion-mnist").train.tensors(images)
    model = small_mlp_class()()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(2):
        for start in range(0, images, 100):
            loss = nn.functional.cross_entropy(model(x[start : start + 100]), y[start : start + 100])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def write_task_file(folder: Path, name: str = "my_task.py", body: str | None = None) -> Path:
    """A task file in ``folder``: the network, then ``body`` (default: ``make()`` returning the
    trained network with a DataLoader, a Dataset and tensors as its three splits)."""
    weights = folder / "small_mlp.pt"
    if not weights.is_file():
        torch.save(train_small_mlp().state_dict(), weights)
    path = folder / name
    path.write_text(MODEL_SOURCE + (body if body is not None else TASK_SOURCE.format(weights=str(weights))))
    return path
