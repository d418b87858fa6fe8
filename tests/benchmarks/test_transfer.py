"""The transfer benchmark: it refuses instances the policy met, and its curves are best-so-far."""

from __future__ import annotations

import pytest

from benchmarks.transfer import best_so_far, grid, parse_instance, refuse_seen, summarize, verdict
from prune_env.app import PrunePolicy

META = {
    "tasks": ["fashion-mnist-cnn"],
    "budgets": {"params": {"choices": [0.05, 0.2]}, "flops": {"low": 0.2, "high": 0.5}},
}


def _policy() -> PrunePolicy:
    return PrunePolicy(policy=None, agent="ppo-lag-scaled", meta=META)


def test_an_instance_the_policy_trained_on_is_refused():
    policy = _policy()
    with pytest.raises(ValueError, match="trained on fashion-mnist-cnn:params:0.2"):
        refuse_seen(policy, [parse_instance("fashion-mnist-cnn:params:0.2")])
    with pytest.raises(ValueError, match="flops:0.3"):
        refuse_seen(policy, [parse_instance("fashion-mnist-cnn:flops:0.3")])  # inside the trained range
    refuse_seen(policy, [parse_instance(i) for i in ("fashion-mnist-cnn:params:0.1",  # a held-out limit
                                                     "fashion-mnist-cnn:flops:0.6",
                                                     "fashion-mnist-mlp:params:0.2")])  # fmt: skip
    with pytest.raises(ValueError, match="TASK:BUDGET:LIMIT"):
        parse_instance("fashion-mnist-cnn:params")


def test_best_so_far_skips_infeasible_candidates():
    rows = [
        {"accuracy": a, "satisfied": s}
        for a, s in [(0.5, False), (0.3, True), (0.9, False), (0.4, True), (0.2, True)]
    ]
    assert grid(5) == [1, 2, 4, 5] and grid(256)[-1] == 256 and len(grid(256)) == 9
    assert best_so_far(rows, grid(5)) == {1: None, 2: 1, 4: 3, 5: 3}


def test_the_verdict_and_the_break_even_from_the_curves():
    row = {"instance": {"task": "t", "budget": "params", "limit": 0.1}, "seed": 0}
    rows = [
        {**row, "method": "policy", "curve": {"1": 0.80, "16": 0.85}, "test": {"1": 0.86, "16": 0.88}},
        {**row, "method": "evolution", "curve": {"16": 0.84, "64": 0.86, "160": 0.87}, "test": {"16": 0.87, "64": 0.88, "160": 0.89}},
    ]  # fmt: skip
    summary = summarize(rows, [1, 16, 64, 160])
    lines = verdict(summary, {"evaluations": 960}, [1, 16, 64, 160])
    assert "+1.00 points for evolution" in lines[0] and "not met" in lines[0]
    assert "needs 64 evaluations" in lines[1] and "break-even after 20.0 instances" in lines[1]


def test_another_policy_reuses_the_searches_but_not_the_policys_rows():
    from benchmarks.transfer import reusable, rows_for

    shipped = PrunePolicy(policy=None, agent="ppo-lag-scaled", meta={**META, "sha256": "a"})
    other = PrunePolicy(policy=None, agent="ppo-lag", meta={**META, "sha256": "b"})
    inst = {"task": "fashion-mnist-mlp", "budget": "params", "limit": 0.1}
    rows = [
        {"instance": inst, "seed": 0, "method": "policy", "policy_sha256": "a"},
        {"instance": inst, "seed": 0, "method": "scratch", "policy_sha256": "a"},  # older rows name no agent
        {"instance": inst, "seed": 0, "method": "evolution", "policy_sha256": "a"},
        {
            "instance": inst,
            "seed": 0,
            "method": "evolution",
            "policy_sha256": "b",
        },  # a duplicate: the first holds
    ]
    assert [reusable(r, shipped) for r in rows] == [True, True, True, True]
    assert [reusable(r, other) for r in rows] == [False, False, True, True]
    assert [(r["method"], r["policy_sha256"]) for r in rows_for(rows, other)] == [("evolution", "a")]
