"""benchmarks/agents_cmdp.py on a tiny setting: rows per (agent, seed), resumable, and a report
whose numbers are the rows' own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def test_rows_resume_and_the_report_restates_them(tmp_path):
    out = tmp_path / "agents.jsonl"
    command = [sys.executable, "benchmarks/agents_cmdp.py", "--task", "fashion-mnist-mlp", "--limit", "0.3",
               "--agents", "ppo-lag", "p3o", "--seeds", "0", "--timesteps", "100", "--eval-samples", "50",
               "--out", str(out)]  # fmt: skip
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["agent"], r["seed"]) for r in rows] == [("ppo-lag", 0), ("p3o", 0)]
    for r in rows:
        assert len(r["cost"]) == len(r["accuracy"]) == len(r["episode_steps"]) >= 40  # 2-step episodes
        assert r["episode_steps"] == sorted(r["episode_steps"])
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert again.returncode == 0 and len(out.read_text().splitlines()) == 2  # nothing rerun
    table = (tmp_path / "AGENTS.md").read_text()
    start = int(0.75 * len(rows[0]["cost"]))
    cost, accuracy = np.asarray(rows[0]["cost"])[start:], np.asarray(rows[0]["accuracy"])[start:]
    inside = cost <= 0.3
    feasible = f"{accuracy[inside].mean():.3f}" if inside.any() else "never"
    assert f"| ppo-lag | 1 | {accuracy.mean():.3f} | {feasible} | {cost.mean():.3f} |" in table
    assert (tmp_path / "AGENTS.png").is_file()


def test_a_labelled_variant_runs_with_its_hyperparameters(tmp_path):
    out = tmp_path / "agents.jsonl"
    command = [sys.executable, "benchmarks/agents_cmdp.py", "--task", "fashion-mnist-mlp", "--limit", "0.3",
               "--agents", "ppo-lag", "--seeds", "0", "--timesteps", "64", "--eval-samples", "50",
               "--set", "separate_cost_clip=true", "n_steps=32", "--out", str(out)]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["agent"] == "ppo-lag[separate_cost_clip=True,n_steps=32]" and row["base_agent"] == "ppo-lag"
    assert row["overrides"] == {"separate_cost_clip": True, "n_steps": 32}
    assert "| ppo-lag[separate_cost_clip=True,n_steps=32] | 1 |" in (tmp_path / "AGENTS.md").read_text()
    bad = subprocess.run(
        [*command[:-2], "--set", "oops", "--out", str(out)], capture_output=True, text=True, cwd=ROOT
    )
    assert bad.returncode != 0 and "key=value" in bad.stderr
