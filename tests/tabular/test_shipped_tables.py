"""Every shipped table replays live: a few random cells re-scored by the live env (1 torch
thread, each cell's fine-tune seed) equal the table exactly, and its header says how it was made."""

from __future__ import annotations

import pytest

from prune_env.app.tables import verify_table
from prune_env.tabular import Table, available
from prune_env.zoo.tasks import checkpoint_path


@pytest.mark.parametrize("task", available())
def test_a_shipped_table_replays_live(task):
    table = Table.for_task(task)
    assert verify_table(table, cells=2, seed=7) == []
    build = table.meta["build"]
    assert build["commit"] != "unknown" and build["cell_cpu_seconds"] > 0
    assert table.arrays["final_cells"].size >= 200 and checkpoint_path(task).is_file()
    fidelity = table.fidelity()
    assert -1 <= fidelity["low"] <= fidelity["rho"] <= fidelity["high"] <= 1


def test_the_mlp_table_ships():
    assert "fashion-mnist-mlp" in available()
