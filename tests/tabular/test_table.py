"""The table: cell numbering, the optimum against brute force, files, and the live replay."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from prune_env.app.tables import level_grid, stratified_sample, verify_table
from prune_env.errors import TableError
from prune_env.tabular.table import Table, spearman


def test_cells_are_numbered_in_mixed_radix_first_group_most_significant(mlp_table):
    L = mlp_table.num_levels
    assert mlp_table.num_cells == L**2 == 16
    for a, b in itertools.product(range(L), repeat=2):
        assert mlp_table.cell([a, b]) == a * L + b
        assert mlp_table.cell_levels(a * L + b) == (a, b)
    with pytest.raises(TableError, match="one level index"):
        mlp_table.cell([0, L])


def test_kept_units_are_the_live_ratio_actions(mlp_table):
    # level 0.25 of a group of width w keeps round(0.25 * w) units of largest L1 magnitude
    for g, width in enumerate(mlp_table.widths):
        assert mlp_table.units[g].tolist() == [max(round(v * width), 1) for v in (0.25, 0.5, 0.75, 1.0)]
        top = np.argsort(-mlp_table.importance[g], kind="stable")[: mlp_table.units[g][0]]
        assert mlp_table.kept[g][0].tolist() == sorted(top.tolist())


@pytest.mark.parametrize(
    ("budget", "limit"), [("params", 0.25), ("params", 0.6), ("flops", 0.3), ("latency", 0.8)]
)
def test_optimum_is_the_best_feasible_cell_by_brute_force(mlp_table, budget, limit):
    acc, cost = mlp_table.accuracy("finetuned"), mlp_table.cost(budget)
    best = None
    for cell in range(mlp_table.num_cells):
        if cost[cell] <= limit and (best is None or (acc[cell], -cost[cell]) > (acc[best], -cost[best])):
            best = cell
    optimum = mlp_table.optimum(budget, limit)
    assert optimum.cell == best and optimum.accuracy == acc[best] and optimum.cost == cost[best]
    assert optimum.keep == tuple(mlp_table.levels[j] for j in mlp_table.cell_levels(best))


def test_no_feasible_cell_is_an_error(mlp_table):
    with pytest.raises(TableError, match="no cell"):
        mlp_table.optimum("params", 0.01)


def test_accuracies_are_correct_counts_over_the_protocols_images(mlp_table):
    n = mlp_table.protocol("finetuned").eval_samples
    assert n == 1000 and mlp_table.protocol("raw").finetune_steps == 0
    assert mlp_table.protocol("finetuned").finetune_steps == 32
    assert np.array_equal(mlp_table.accuracy("raw") * n, mlp_table.arrays["correct_raw"])
    dense = mlp_table.num_cells - 1  # every group at level 1.0
    assert mlp_table.cost("params")[dense] == 1.0 and mlp_table.cost("latency")[dense] == 1.0


def test_the_table_replays_live(mlp_table):
    assert verify_table(mlp_table, cells=3, seed=1) == []


def test_a_tampered_cell_is_reported(mlp_table, tmp_path):
    arrays = {k: v.copy() for k, v in mlp_table.arrays.items()}
    arrays["correct_finetuned"][:] += 1
    tampered = Table(mlp_table.meta, arrays)
    differences = verify_table(tampered, cells=2, seed=0)
    assert {d["value"] for d in differences} == {"correct_finetuned"}
    assert all(d["live"] == d["table"] - 1 for d in differences)


def test_file_round_trip_and_bad_files(mlp_table, tmp_path):
    path = mlp_table.save(tmp_path / "t.npz")
    again = Table.load(path)
    assert again.meta == mlp_table.meta
    assert all(np.array_equal(again.arrays[k], v) for k, v in mlp_table.arrays.items())
    (tmp_path / "bad.npz").write_bytes(b"not a table")
    with pytest.raises(TableError, match="not a pruning table"):
        Table.load(tmp_path / "bad.npz")
    with pytest.raises(TableError, match="no table at"):
        Table.load(tmp_path / "missing.npz")
    arrays = dict(mlp_table.arrays)
    del arrays["params_ratio"]
    with pytest.raises(TableError, match="params_ratio"):
        Table(mlp_table.meta, arrays)
    with pytest.raises(TableError, match="no table ships"):
        Table.for_task("no-such-task")


def test_stratified_sample_spreads_over_the_strata():
    ratios = np.linspace(0, 1, 1000)
    sample = stratified_sample(ratios, 200, seed=0)
    assert len(np.unique(sample)) == 200
    assert np.bincount((ratios[sample] * 10).clip(0, 9).astype(int)).tolist() == [20] * 10
    assert np.array_equal(sample, stratified_sample(ratios, 200, seed=0))


def test_level_grid_and_spearman():
    assert level_grid(5) == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert level_grid(32)[0] == 1 / 32 and level_grid(32)[-1] == 1.0
    with pytest.raises(TableError):
        level_grid(1)
    # ties share their average rank: x ranks [1.5, 1.5, 3], y ranks [1, 2, 3]
    assert spearman(np.array([1, 1, 2]), np.array([1, 2, 3])) == pytest.approx(0.8660254, abs=1e-6)
    assert spearman(np.arange(5), -np.arange(5)) == pytest.approx(-1.0)
