"""The one training loop: a step is what it says, epochs keep the best validation accuracy."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prune_env.zoo.data import Split
from prune_env.zoo.training import accuracy, epoch_batches, fit, train_epochs


def _split(n: int = 96, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 4, 4), generator=g, dtype=torch.uint8)
    labels = (images.float().mean((1, 2, 3)) > 127).long()  # learnable: bright or dark
    return Split(images, labels, (0.5,), (0.25,))


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))


def test_fit_takes_exactly_the_textbook_steps():
    split = _split()
    x, y = split.tensors()
    model, reference = _model(), _model()
    batches = [(x[:32], y[:32]), (x[32:64], y[32:64])]
    fit(model, batches, torch.optim.SGD(model.parameters(), lr=0.1))
    opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    for inputs, labels in batches:
        opt.zero_grad()
        F.cross_entropy(reference(inputs), labels).backward()
        opt.step()
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.equal(a, b)
    assert not model.training


def test_epoch_batches_drop_the_partial_batch_and_follow_the_order():
    split = _split(n=70)
    order = np.arange(70)[::-1].copy()
    batches = list(epoch_batches(split, order, 32))
    assert len(batches) == 2 and batches[0][1].tolist() == split.labels[order[:32]].tolist()


def test_train_epochs_keeps_the_best_epoch_and_is_seeded():
    split = _split()
    val = _split(n=64, seed=1).tensors()
    runs = []
    for _ in range(2):
        model = _model()
        result = train_epochs(model, split, val, torch.optim.Adam(model.parameters(), lr=0.05), epochs=4,
                              batch_size=16, rng=np.random.default_rng(3))  # fmt: skip
        runs.append((result, model))
    (first, model), (second, _) = runs
    assert first.history == second.history and len(first.history) == 4
    assert first.best_accuracy == max(first.history) == accuracy(model, *val)
    assert first.best_epoch == 1 + first.history.index(max(first.history))


def test_include_start_keeps_the_starting_weights_when_training_only_hurts():
    split, val = _split(), _split(n=64, seed=1).tensors()
    model = _model()
    train_epochs(model, split, val, torch.optim.Adam(model.parameters(), lr=0.05), epochs=4, batch_size=16,
                 rng=np.random.default_rng(0))  # fmt: skip
    good = copy.deepcopy(model.state_dict())
    before = accuracy(model, *val)
    flipped = Split(split.images, 1 - split.labels, split.mean, split.std)  # training on wrong labels
    result = train_epochs(model, flipped, val, torch.optim.Adam(model.parameters(), lr=0.05), epochs=2,
                          batch_size=16, rng=np.random.default_rng(0), include_start=True)  # fmt: skip
    assert max(result.history) < before  # every epoch made it worse...
    assert result.best_epoch == 0 and result.best_accuracy == before  # ...so the start is kept
    assert all(torch.equal(v, good[k]) for k, v in model.state_dict().items())
