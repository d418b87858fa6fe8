"""The table build: split over worker processes, resumable after a kill (a torn last line
included), refusing a work folder of another recipe, and giving the same table either way."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prune_env.app.tables import build_table
from prune_env.errors import TableError


def test_two_workers_and_a_resume_after_a_torn_line_give_the_same_table(tmp_path, mlp_table):
    out = tmp_path / "mlp.npz"
    table = build_table("fashion-mnist-mlp", levels=4, out=out, workers=2, final_sample=0, progress=False)
    assert table is not None
    for key, values in mlp_table.arrays.items():
        if key != "latency_ms":  # measured, not replayed
            assert np.array_equal(table.arrays[key], values), key
    work = out.with_suffix(".work")
    assert sorted(p.name for p in work.glob("cells.*.jsonl")) == ["cells.0.jsonl", "cells.1.jsonl"]
    # a killed worker: its last rows gone and a torn line left behind
    path = work / "cells.1.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + "\n" + lines[-3][:10])
    again = build_table("fashion-mnist-mlp", levels=4, out=out, workers=1, final_sample=0, progress=False)
    assert np.array_equal(again.arrays["correct_finetuned"], table.arrays["correct_finetuned"])
    rows = [json.loads(line) for p in work.glob("cells.*.jsonl") for line in p.read_text().splitlines()
            if line.startswith("{") and line.endswith("}")]  # fmt: skip
    assert sorted(r["cell"] for r in rows) == list(range(16))  # the three lost cells scored again, once each
    with pytest.raises(TableError, match="another recipe"):
        build_table("fashion-mnist-mlp", levels=3, out=out, final_sample=0, progress=False)
    with pytest.raises(TableError, match="same number of units"):
        build_table(
            "fashion-mnist-mlp", levels=200, out=tmp_path / "fine.npz", final_sample=0, progress=False
        )
