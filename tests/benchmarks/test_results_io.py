"""Results files shared by grid processes: concurrent appends must all land."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

APPENDER = """
from pathlib import Path
from benchmarks.results_io import append_atomically
for i in range({count}):
    append_atomically(Path({path!r}), {{"writer": {writer}, "i": i}})
"""


def test_processes_appending_to_one_file_lose_no_entry(tmp_path):
    path, writers, count = tmp_path / "shared.jsonl", 4, 40
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                APPENDER.format(path=str(path), writer=w, count=count),
            ]
        )
        for w in range(writers)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted((e["writer"], e["i"]) for e in entries) == [
        (w, i) for w in range(writers) for i in range(count)
    ]
    for w in range(writers):  # each writer's entries stay in the order it wrote them
        assert [e["i"] for e in entries if e["writer"] == w] == list(range(count))
