"""A task file: how you hand your own network to prune-env.

    prune-env prune --task examples/my_task.py:fashion_cnn --limit 0.25

``fashion_cnn()`` returns the trained network and its data; prune-env calls it once per process.
Here the network is trained on first use (seed 0, ~15 s on 2 CPU cores) and cached under
``prune_env.cache_dir()``; yours would load your checkpoint. The splits may be ``(inputs, labels)``
tensors, a map-style torch ``Dataset`` or a ``DataLoader`` over one (its dataset is used; prune-env
draws its own batches). The reward only ever sees ``val``; ``test`` is for the final report.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import prune_env


class TinyCNN(nn.Module):
    """conv(16) -> conv(32) -> fc(64) -> 10 classes, with BatchNorm: three prunable groups."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def _trained(train: TensorDataset) -> TinyCNN:
    """Your checkpoint, in real use. Here: one epoch of Adam on 20,000 images, cached."""
    path = prune_env.cache_dir() / "examples" / "my_task_tiny_cnn.pt"
    model = TinyCNN()
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for x, y in DataLoader(train, batch_size=128, shuffle=True):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model.eval()


def fashion_cnn() -> dict:
    data = prune_env.load_dataset("fashion-mnist")  # normalized (inputs, labels) tensors
    train = TensorDataset(*data.train.tensors(20_000))
    return {
        "model": _trained(train),
        "train": DataLoader(train, batch_size=128, shuffle=True),
        "val": data.val.tensors(),
        "test": data.test.tensors(),
    }
