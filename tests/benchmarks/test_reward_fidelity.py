"""The fidelity study: rank statistics equal hand computations; runs resume; the report covers
every protocol."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.reward_fidelity import PROTOCOLS, ranks, spearman

ROOT = Path(__file__).resolve().parents[2]


def test_ranks_share_ties_and_spearman_matches_the_textbook_formula():
    assert ranks(np.array([10.0, 20.0, 20.0, 30.0])).tolist() == [1.0, 2.5, 2.5, 4.0]
    # no ties: rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 4 / 120
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [10, 100, 1000]) == pytest.approx(1.0)  # monotone, not linear
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))


def _run(out: Path, masks: int) -> subprocess.CompletedProcess:
    args = ["benchmarks/reward_fidelity.py", "--task", "fashion-mnist-mlp", "--limit", "0.3", "--masks", str(masks),
            "--final-epochs", "0", "--eval-samples", "100", "--out", str(out), "--markdown", str(out.with_suffix(".md"))]  # fmt: skip
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_study_resumes_and_reports_every_protocol(tmp_path):
    out = tmp_path / "fidelity.jsonl"
    assert _run(out, 2).returncode == 0
    first = out.read_text().splitlines()
    resumed = _run(out, 3)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    lines = out.read_text().splitlines()
    assert lines[:2] == first and len(lines) == 3  # finished masks are kept, one more scored
    rows = [json.loads(line) for line in lines]
    for row in rows:
        assert row["satisfied"] and row["cost"] <= 0.3 and set(row["scores"]) == set(PROTOCOLS)
        # the MLP has no BatchNorm: recalibration cannot change its score
        assert row["scores"]["bn-16"]["accuracy"] == row["scores"]["none"]["accuracy"]
    report = out.with_suffix(".md").read_text()
    assert all(f"| {name} |" in report for name in PROTOCOLS)
