"""The group search is bounded: a model whose reshapes would multiply Torch-Pruning's index
lists past the bound is refused with a typed error that says how to lower the cost."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_pruning.dependency import index_mapping

from prune_env import AnalysisTooCostlyError, UnsupportedModelError, analysis_bounds
from prune_env.groups import analyze


class FlattenNet(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * size * size, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(torch.relu(self.fc(torch.flatten(torch.relu(self.conv(x)), 1))))


def test_past_the_index_bound_the_search_stops_with_a_typed_error(monkeypatch):
    original = index_mapping._FlattenIndexMapping.__call__
    # conv's 8 channels flatten into 8 * 16 * 16 = 2,048 features: one index each
    monkeypatch.setattr(analysis_bounds, "MAX_INDICES", 2_000)
    with pytest.raises(AnalysisTooCostlyError, match="smaller example_inputs") as err:
        analyze(FlattenNet(16).eval(), torch.randn(1, 1, 16, 16))
    assert isinstance(err.value, UnsupportedModelError) and "2,000 indices" in str(err.value)
    assert index_mapping._FlattenIndexMapping.__call__ is original  # the guard is lifted again
    # a smaller input fits the same bound, and the groups are found
    monkeypatch.setattr(analysis_bounds, "MAX_INDICES", 2_000)
    small = analyze(FlattenNet(4).eval(), torch.randn(1, 1, 4, 4))
    assert [g.name for g in small.groups] == ["conv", "fc"]


def test_past_the_time_bound_the_search_stops(monkeypatch):
    monkeypatch.setattr(analysis_bounds, "MAX_SECONDS", -1.0)
    with pytest.raises(AnalysisTooCostlyError, match=r"stopped at \d+ s"):
        analyze(FlattenNet(4).eval(), torch.randn(1, 1, 4, 4))
