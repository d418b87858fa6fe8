"""The one record of a scored mask: built by the env, JSON round trip, typed errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prune_env import InvalidRecordError, ScoredMask, ScoringProtocol


def _finish_episode(env, ratio_keep: int = 40):
    env.reset(seed=0)
    keep = np.zeros(env.max_units, dtype=np.int8)
    keep[:ratio_keep] = 1
    env.step(keep)
    return env.step(keep)


def test_final_info_is_built_from_the_record(mlp_env):
    _, reward, terminated, _, info = _finish_episode(mlp_env)
    record = info["scored"]
    assert terminated and isinstance(record, ScoredMask)
    assert reward == record.accuracy == info["accuracy"]
    assert info["cost"] == record.cost == record.costs[0] and info["costs"] == record.costs
    assert info["constraint_satisfied"] == record.satisfied == (record.cost <= mlp_env.budget_limit)
    assert info["masks"] == record.masks and info["widths"] == record.widths == {"fc1": 40, "fc2": 40}
    assert record.limits == [mlp_env.budget_limit] and record.budgets == {"params": record.cost}
    assert record.protocol == ScoringProtocol(eval_samples=200) and record.source == "episode"
    dense = 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    assert record.params_ratio == pytest.approx((784 * 40 + 40 + 40 * 40 + 40 + 40 * 10 + 10) / dense)


def test_the_protocol_follows_the_env_settings(mlp_env):
    mlp_env.finetune_steps = 3
    try:
        record = mlp_env.evaluate_masks({"fc1": list(range(50))}, source="test")
    finally:
        mlp_env.finetune_steps = 0
    assert record.protocol.finetune_steps == 3 and record.source == "test"
    assert record.widths == {"fc1": 50, "fc2": 100}  # unnamed groups stay dense


def test_json_round_trip_is_exact(mlp_env):
    _, _, _, _, info = _finish_episode(mlp_env)
    record = info["scored"]
    again = ScoredMask.from_json(record.to_json())
    assert again == record
    assert json.loads(record.to_json())["protocol"]["eval_samples"] == 200


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("accuracy"), r"missing fields \['accuracy'\]"),
        (lambda d: d.update(acc=1.0), r"unknown fields \['acc'\]"),
        (lambda d: d.update(protocol={"eval_samples": 10, "steps": 1}), "malformed"),
        (lambda d: d.update(costs="cheap"), "malformed"),
    ],
)
def test_bad_records_raise_a_typed_error(mlp_env, change, message):
    data = mlp_env.evaluate_masks({"fc1": [0, 1]}).to_dict()
    change(data)
    with pytest.raises(InvalidRecordError, match=message):
        ScoredMask.from_dict(data)


def test_not_json_is_a_typed_error():
    with pytest.raises(InvalidRecordError, match="not valid JSON"):
        ScoredMask.from_json("{masks: ")
