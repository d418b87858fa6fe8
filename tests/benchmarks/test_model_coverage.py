"""benchmarks/model_coverage.py isolates each model and records what happened to it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_small_representatives_are_pruned_or_refused_with_a_reason(tmp_path):
    out = tmp_path / "coverage.jsonl"
    run = subprocess.run(
        [sys.executable, "benchmarks/model_coverage.py", "--size", "64", "--timeout", "300", "--memory-gb", "8",
         "--models", "squeezenet1_1", "regnet_y_400mf", "shufflenet_v2_x0_5", "convnext_tiny",
         "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    rows = {r["model"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["squeezenet1_1"]["outcome"] == "pruned" and rows["squeezenet1_1"]["groups"] > 10
    assert (
        rows["regnet_y_400mf"]["outcome"] == "pruned" and rows["regnet_y_400mf"]["groups"] > 20
    )  # grouped convs
    # Torch-Pruning 1.6 cannot read its channel shuffle (ZeroDivisionError): the groups through it
    # stay whole, the rest are pruned
    shuffle = rows["shufflenet_v2_x0_5"]
    assert shuffle["outcome"] == "pruned" and shuffle["groups"] > 10 and shuffle["left_whole"] > 0
    # LayerNorm streams with their layer scales pruned too: 4 streams + 18 MLP hidden layers
    convnext = rows["convnext_tiny"]
    assert convnext["outcome"] == "pruned" and convnext["groups"] == 22 and convnext["left_whole"] == 0
    assert "4 models: 4 pruned" in (tmp_path / "MODEL_COVERAGE.md").read_text()


def test_a_model_over_its_time_is_a_timeout_not_a_hang(tmp_path):
    out = tmp_path / "coverage.jsonl"
    run = subprocess.run(
        [sys.executable, "benchmarks/model_coverage.py", "--size", "64", "--timeout", "0.5",
         "--models", "squeezenet1_1", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(out.read_text())["outcome"] == "timeout"
