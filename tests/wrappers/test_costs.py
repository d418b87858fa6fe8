"""The one reader of the cost convention, shared by wrappers and agents."""

from __future__ import annotations

import numpy as np
import pytest

from prune_env import MissingCostError, read_costs


def test_vector_costs_win_and_scalars_become_vectors():
    assert read_costs({"cost": 0.3, "costs": [0.3, 0.7]}).tolist() == [0.3, 0.7]
    assert read_costs({"cost": 0.3}).tolist() == [0.3]
    assert read_costs({"latency": np.float32(2.0)}, cost_key="latency").dtype == np.float64


def test_missing_cost_names_the_keys_it_saw():
    with pytest.raises(MissingCostError, match=r"info\['cost'\].*keys \['accuracy'\]"):
        read_costs({"accuracy": 0.9})
    assert issubclass(MissingCostError, KeyError)  # callers catching KeyError still do
