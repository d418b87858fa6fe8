"""A small table built once per session from the live MLP task (4 levels x 2 groups = 16 cells,
no final fine-tune sample), so the tabulated env is checked against the env it tabulates."""

from __future__ import annotations

import pytest

from prune_env.app.tables import build_table


@pytest.fixture(scope="session")
def mlp_table(tmp_path_factory):
    out = tmp_path_factory.mktemp("tables") / "mlp.npz"
    table = build_table("fashion-mnist-mlp", levels=4, out=out, final_sample=0, progress=False)
    assert table is not None
    return table
