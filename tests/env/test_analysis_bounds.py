"""The group search is bounded: a group whose reshapes would multiply Torch-Pruning's index
lists past the bound stays whole with the reason (refused with strict), and a search past its
time is refused with a typed error that says how to lower the cost."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_pruning.dependency import index_mapping

from prune_env import AnalysisTooCostlyError, UnsupportedModelError
from prune_env.surgery import analysis_bounds
from prune_env.surgery.dependency_groups import analyze


class FlattenNet(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * size * size, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(torch.relu(self.fc(torch.flatten(torch.relu(self.conv(x)), 1))))


def test_a_group_whose_search_passes_the_index_bound_stays_whole(monkeypatch):
    original = index_mapping._FlattenIndexMapping.__call__
    # conv's 8 channels flatten into 8 * 16 * 16 = 2,048 features: one index each
    monkeypatch.setattr(analysis_bounds, "MAX_INDICES", 2_000)
    analysis = analyze(FlattenNet(16).eval(), torch.randn(1, 1, 16, 16))
    assert [g.name for g in analysis.groups] == ["fc"]
    assert "stopped at 2,048 channel indices" in analysis.skipped["conv"]
    assert "smaller example_inputs" in analysis.skipped["conv"]
    with pytest.raises(AnalysisTooCostlyError, match="2,000 indices") as err:
        analyze(FlattenNet(16).eval(), torch.randn(1, 1, 16, 16), strict=True)
    assert isinstance(err.value, UnsupportedModelError) and err.value.bound == "indices"
    assert index_mapping._FlattenIndexMapping.__call__ is original  # the guard is lifted again
    # a smaller input fits the same bound, and every group is found
    small = analyze(FlattenNet(4).eval(), torch.randn(1, 1, 4, 4))
    assert [g.name for g in small.groups] == ["conv", "fc"] and not small.skipped


def test_past_the_time_bound_the_whole_search_stops(monkeypatch):
    monkeypatch.setattr(analysis_bounds, "MAX_SECONDS", -1.0)
    with pytest.raises(AnalysisTooCostlyError, match="took over -1 s; give smaller example_inputs") as err:
        analyze(FlattenNet(4).eval(), torch.randn(1, 1, 4, 4))
    assert err.value.bound == "seconds"


def test_the_bound_survives_a_trip_to_another_process():
    import pickle

    from prune_env.errors import AnalysisTooCostlyError

    error = pickle.loads(pickle.dumps(AnalysisTooCostlyError("too many indices", "indices")))
    assert (error.bound, str(error)) == ("indices", "too many indices")
