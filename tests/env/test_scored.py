"""The one record of a scored mask: built by the env, JSON round trip, typed errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import prune_env
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
        record = mlp_env.problem.score({"fc1": list(range(50))}, source="test")
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
    data = mlp_env.problem.score({"fc1": [0, 1]}).to_dict()
    change(data)
    with pytest.raises(InvalidRecordError, match=message):
        ScoredMask.from_dict(data)


def test_not_json_is_a_typed_error():
    with pytest.raises(InvalidRecordError, match="not valid JSON"):
        ScoredMask.from_json("{masks: ")


def test_bn_recalibration_is_part_of_the_protocol_and_deterministic():
    env = prune_env.PruneEnv("fashion-mnist-cnn", budget_limit=0.25, eval_samples=300)
    keep = env.problem.keep_from_ratios([0.5] * env.num_groups)
    plain = env.problem.score(keep)
    env.problem.bn_recalibration = 8
    first, second = env.problem.score(keep), env.problem.score(keep)
    assert first.protocol.bn_recalibration == 8 and plain.protocol.bn_recalibration == 0
    assert first == second  # the same fixed batches for every candidate: replayable
    assert first.accuracy != plain.accuracy  # the statistics really were re-estimated
    assert first.costs == plain.costs and first.widths == plain.widths
    with pytest.raises(ValueError, match="bn_recalibration must be >= 0"):
        env.problem.bn_recalibration = -1
    assert env.problem.bn_recalibration == 8  # a rejected value leaves the env as it was


def test_bn_recalibration_needs_training_data(residual_model, residual_data):
    env = prune_env.PruneEnv(model=residual_model, eval_data=residual_data)
    with pytest.raises(ValueError, match="needs training data"):
        env.problem.bn_recalibration = 4


def test_more_recalibration_batches_extend_the_same_draw():
    env = prune_env.PruneEnv("fashion-mnist-cnn", eval_samples=10)
    env.problem.bn_recalibration = 4
    first = [inputs.clone() for inputs, _ in env.problem._recalibration_batches]
    env.problem.bn_recalibration = 16
    grown = [inputs for inputs, _ in env.problem._recalibration_batches]
    assert len(grown) == 16 and all(torch.equal(a, b) for a, b in zip(first, grown))
    assert len({float(x.sum()) for x in grown}) == 16  # no batch repeated
