"""The tabular benchmark: regret is the table's optimum minus the best feasible score found,
checked against a brute-force optimum; its statistics against hand counts."""

from __future__ import annotations

import json

import pytest

from benchmarks import tabular
from prune_env.scored import ScoredMask, ScoringProtocol
from prune_env.tabular import Table


def _record(accuracy: float, satisfied: bool) -> ScoredMask:
    return ScoredMask({}, {}, accuracy, [0.1], {"params": 0.1}, [0.1], 0.1, 0.1, satisfied, ScoringProtocol())


def test_best_so_far_counts_feasible_masks_only():
    records = [_record(a, s) for a, s in [(0.5, False), (0.3, True), (0.9, False), (0.4, True), (0.2, True)]]
    assert tabular.best_so_far(records, 5) == [0.0, 0.3, 0.3, 0.4, 0.4]
    assert tabular.best_so_far(records, 2) == [0.0, 0.3]


def test_statistics_against_hand_counts():
    row = {"optimum": 0.9, "best": [0.0, 0.85, 0.899, 0.9], "evaluations": 4}
    assert tabular.regret_points(row, 1) == pytest.approx(90.0)
    assert tabular.regret_points(row, 3) == pytest.approx(0.1)
    assert tabular.evaluations_within(row, 0.1) == 3 and tabular.evaluations_within(row, 0.0) == 4
    assert tabular.evaluations_within({"optimum": 0.9, "best": [0.5]}, 0.1) is None
    low, high = tabular.wilson(5, 10)  # Wilson's interval of 5/10: 0.2366..0.7634
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    mean, lo, hi = tabular.bootstrap_mean([0.0, 1.0, 2.0, 3.0])
    assert mean == 1.5 and 0.0 <= lo < 1.5 < hi <= 3.0


@pytest.mark.skipif("fashion-mnist-mlp" not in __import__("prune_env.tabular").tabular.available(),
                    reason="the MLP table is not shipped")  # fmt: skip
def test_runs_resume_and_regret_is_against_the_brute_force_optimum(tmp_path):
    results = tmp_path / "tabular.jsonl"
    argv = ["--task", "fashion-mnist-mlp", "--seeds", "2", "--evaluations", "40", "--instance", "params:0.25",
            "--methods", "evolution", "ppo-lag", "--results", str(results)]  # fmt: skip
    assert tabular.main(argv) == 0
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 4
    table = Table.for_task("fashion-mnist-mlp")
    acc, cost = table.accuracy(), table.cost("params")
    brute = max(acc[c] for c in range(table.num_cells) if cost[c] <= 0.25)
    for row in rows:
        assert row["optimum"] == brute and len(row["best"]) == 40
        assert all(a <= b for a, b in zip(row["best"], row["best"][1:])) and row["best"][-1] <= brute
    assert tabular.main(argv) == 0  # everything done: nothing is run again
    assert len(results.read_text().splitlines()) == 4
    page = (tmp_path / "TABULAR.md").read_text()
    assert "## fashion-mnist-mlp, params <= 0.25" in page and "| evolution | 2 |" in page
    assert (tmp_path / "fashion-mnist-mlp__tabular_regret.png").is_file()
    # a run of another length is not mixed into the report
    assert [r["seed"] for r in tabular.one_length([*rows, {**rows[0], "evaluations": 10}])] == [0, 1, 0, 1]


def test_the_board_comparison_ranks_methods_by_both_scores(tmp_path, monkeypatch):
    board = tmp_path / "board.jsonl"
    entries = [
        {"task": "t", "budget": "params", "limit": 0.1, "agent": agent, "seed": seed, "satisfied": True,
         "params_ratio": 0.1, "test_accuracy": acc, "evaluations": 100}
        for agent, accs in (("evolution", (0.88, 0.86)), ("ppo-lag", (0.85, 0.85)), ("amc-ddpg", (0.80, 0.82)))
        for seed, acc in enumerate(accs)
    ]  # fmt: skip
    board.write_text("".join(json.dumps(e) + "\n" for e in entries))
    monkeypatch.setitem(tabular.BOARDS, "t", board)
    rows = [
        {
            "method": m,
            "evaluations": 200,
            "best": [0.0] * 99 + [b] + [1.0] * 100,
        }  # the table at the board's 100
        for m, b in (("evolution", 0.9), ("ppo-lag", 0.8), ("amc-ddpg", 0.7))
    ]
    lines = tabular.board_comparison("t", rows, "params", 0.1)
    text = "\n".join(lines)
    assert "Spearman over methods: 1.00 (3 methods" in text
    assert "| evolution | 100 | 90.00 | 87.00 (2 seeds) |" in text
