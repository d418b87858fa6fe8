"""The one training loop: a step is what it says, epochs keep the best validation accuracy."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prune_env.zoo.data import Split
from prune_env.zoo.training import Distillation, accuracy, cross_entropy, epoch_batches, fit, train_epochs


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


def test_distillation_is_the_textbook_objective():
    torch.manual_seed(0)
    teacher = nn.Linear(6, 4)
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    logits = torch.randn(8, 4)
    t, w = 3.0, 0.7
    p = torch.softmax(teacher(x) / t, 1).detach()
    log_q = torch.log_softmax(logits / t, 1)
    kl = (p * (p.log() - log_q)).sum(1).mean()  # per-example KL(teacher || student), averaged
    expected = w * t * t * kl + (1 - w) * F.cross_entropy(logits, y)
    assert Distillation(teacher, t, w)(logits, x, y).item() == pytest.approx(expected.item(), rel=1e-5)
    assert Distillation(teacher, t, 0.0)(logits, x, y).item() == pytest.approx(
        cross_entropy(logits, x, y).item()
    )
    with torch.no_grad():  # a student that equals its teacher has nothing left to distil
        assert Distillation(teacher, t, 1.0)(teacher(x), x, y).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="temperature > 0"):
        Distillation(teacher, 0.0, 0.5)


def test_fit_with_distillation_moves_the_student_toward_the_teacher():
    torch.manual_seed(1)
    teacher, student = nn.Linear(6, 4), nn.Linear(6, 4)
    x = torch.randn(256, 6)
    batches = [(x[i : i + 32], torch.zeros(32, dtype=torch.long)) for i in range(0, 256, 32)]

    def gap() -> float:
        return F.mse_loss(torch.softmax(student(x), 1), torch.softmax(teacher(x), 1)).item()

    before = gap()
    for _ in range(20):
        fit(
            student,
            batches,
            torch.optim.Adam(student.parameters(), lr=1e-2),
            loss=Distillation(teacher, 2.0, 1.0),
        )
    assert gap() < 0.2 * before
