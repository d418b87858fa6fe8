"""The recovery study: masks are the boards' best RL agent's and best search's, each run starts from
the dense weights with the full recipe, lengths stop growing once a longer one gains nothing."""

from __future__ import annotations

import json

import pytest

from benchmarks import recovery


def _entry(agent, seed, acc, masks):
    return {"task": "fashion-mnist-mlp", "budget": "params", "limit": 0.5, "agent": agent, "seed": seed,
            "satisfied": True, "params_ratio": 0.5, "test_accuracy": acc, "selected": {"masks": masks}}  # fmt: skip


def test_board_masks_are_the_best_rl_agents_and_the_best_searchs(tmp_path):
    board = tmp_path / "board.jsonl"
    entries = [_entry("ppo-lag", 0, 0.80, {"a": [0]}), _entry("ppo-lag", 1, 0.82, {"a": [1]}),
               _entry("ppo-pid-lag", 0, 0.85, {"a": [2]}), _entry("evolution", 0, 0.84, {"a": [3]}),
               _entry("taylor", 0, 0.86, {"a": [4]})]  # fmt: skip
    board.write_text("".join(json.dumps(e) + "\n" for e in entries))
    chosen = recovery.board_masks("fashion-mnist-mlp", "params", 0.5, boards=(board,))
    assert chosen["rl"]["method"] == "ppo-pid-lag" and chosen["rl"]["by_seed"] == {0: {"a": [2]}}
    assert chosen["search"]["method"] == "taylor"  # any non-RL method of the board counts as a search
    with pytest.raises(ValueError, match="no board has"):
        recovery.board_masks("fashion-mnist-mlp", "params", 0.3, boards=(board,))


def test_runs_resume_and_the_report_compares_with_the_dense_network(tmp_path, monkeypatch):
    # one real board cell (the MLP board's evolution and ppo-lag at params <= 0.1), 0 and 1 epochs
    monkeypatch.setattr(recovery, "BOARDS", (recovery.RESULTS_DIR / "fmnist-mlp-cpu.jsonl",))
    results = tmp_path / "recovery.jsonl"
    argv = ["--instance", "fashion-mnist-mlp:params:0.1", "--seeds", "0", "--epochs", "0", "1",
            "--losses", "labels", "--results", str(results)]  # fmt: skip
    assert recovery.main(argv) == 0
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert {(r["source"], r["epochs"]) for r in rows} == {
        ("rl", 0),
        ("rl", 1),
        ("search", 0),
        ("search", 1),
        ("dense", 1),
    }
    board = {e["agent"]: e for e in map(json.loads, (recovery.RESULTS_DIR / "fmnist-mlp-cpu.jsonl").open())
             if e.get("seed") == 0 and e.get("limit") == 0.1 and e.get("budget") == "params"}  # fmt: skip
    zero = {r["source"]: r for r in rows if r["epochs"] == 0}
    # no fine-tune: the board's own test accuracy before its fine-tune, from the same masks
    assert zero["search"]["test_accuracy"] == board[zero["search"]["method"]]["test_accuracy_before_finetune"]
    assert recovery.main(argv) == 0 and len(results.read_text().splitlines()) == len(
        rows
    )  # resumed: nothing new
    page = (tmp_path / "RECOVERY.md").read_text()
    assert "## fashion-mnist-mlp, params <= 0.1" in page and "Best:" in page and "dense network's" in page
