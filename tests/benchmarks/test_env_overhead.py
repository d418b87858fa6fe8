"""benchmarks/env_overhead.py runs and prints one row per network (its numbers are timings: the
targets are checked by running it, not here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_overhead_table_has_a_row_per_network():
    run = subprocess.run(
        [sys.executable, "benchmarks/env_overhead.py", "--networks", "mlp", "--repeats", "1", "--threads", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    row = re.search(r"\| mlp \| 2 \| ([\d.]+) \| ([\d.]+)x \| ([\d.]+)x \|", run.stdout)
    assert row and all(float(v) > 0 for v in row.groups()), run.stdout
