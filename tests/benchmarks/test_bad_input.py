"""Every benchmark script answers a wrong or missing file as a new user would give it: one
`error:` line and exit status 2, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
CMDP, COVERAGE, TEXT = RESULTS / "agents_cmdp.jsonl", RESULTS / "model_coverage.jsonl", RESULTS / "AGENTS.md"

CASES = {  # script -> arguments naming a file of the wrong kind (or none at all)
    "validate-not-a-board": ["validate.py", str(CMDP)],
    "validate-missing": ["validate.py", "no/such/results.jsonl"],
    "report": ["report.py", str(CMDP)],
    "learning-curves": ["learning_curves.py", str(COVERAGE), "--out", "{tmp}/curves"],
    "leaderboard-not-yaml": ["leaderboard.py", "--config", str(TEXT)],
    "leaderboard-missing": ["leaderboard.py", "--config", "no/such/config.yaml"],
    "distillation": ["distillation.py", "--results", str(CMDP), "--out", "{tmp}/d.jsonl"],
    "agents-cmdp": ["agents_cmdp.py", "--report", "--out", str(COVERAGE)],
    "reward-fidelity": ["reward_fidelity.py", "--report", "--out", str(CMDP)],
    "model-coverage": ["model_coverage.py", "--out", str(CMDP), "--models", "resnet18"],
    "tune-ppo-lag": ["tune_ppo_lag.py", "--storage", "sqlite:///{tmp}/AGENTS.md", "--trials", "1"],
    "env-overhead": ["env_overhead.py", "--networks", "no-such-network"],
    "env-speed": ["env_speed.py", "--task", "no-such-task"],
}


@pytest.mark.parametrize("case", CASES)
def test_a_wrong_file_is_one_error_line(case, tmp_path):
    (tmp_path / "AGENTS.md").write_text(TEXT.read_text())  # a copy: nothing in the repo is touched
    script, *args = CASES[case]
    args = [a.format(tmp=tmp_path) for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    run = subprocess.run([sys.executable, f"benchmarks/{script}", *args], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") or ": error: " in last, run.stderr  # ours, or argparse's
    assert sorted(p.name for p in tmp_path.iterdir()) == before
