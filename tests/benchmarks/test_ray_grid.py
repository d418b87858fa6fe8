"""The leaderboard on Ray (a real local cluster): the same entries as a serial run, a crashed
cell recorded while the grid goes on, a killed driver resumed, a clear line without Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
TIMING = {
    "wall_seconds",
    "search_seconds",
    "latency_ms",
    "dense_latency_ms",
    "latency_speedup",
    "load_average",
    "weights",
}
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _config(tmp_path: Path, name: str, **changes) -> Path:
    config = yaml.safe_load((ROOT / "benchmarks" / "configs" / "smoke.yaml").read_text())
    config.update(results=str(tmp_path / f"{name}.jsonl"), **changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _grid(config: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/leaderboard.py", "--config", str(config), *flags],
                          capture_output=True, text=True, timeout=900, cwd=ROOT, env=ONE_THREAD)  # fmt: skip


def _entries(path: Path) -> dict:
    return {(e["task"], e["agent"], e["seed"]): e for e in map(json.loads, path.read_text().splitlines())}


def test_ray_entries_equal_the_serial_ones_and_a_crash_is_one_entry(tmp_path):
    crash = tmp_path / "crash.py"
    crash.write_text("import os\n\ndef make():\n    os._exit(3)  # the worker process dies\n")
    serial = _grid(_config(tmp_path, "serial"))
    assert serial.returncode == 0, serial.stderr[-2000:]
    on_ray = _grid(
        _config(tmp_path, "ray", tasks=["fashion-mnist-mlp", f"{crash}:make"], resources={"cpus": 1}),
        "--ray", "--workers", "2",
    )  # fmt: skip
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    expected, got = _entries(tmp_path / "serial.jsonl"), _entries(tmp_path / "ray.jsonl")
    assert len(got) == 4
    for key, entry in expected.items():
        same = {k: v for k, v in got[key].items() if k not in TIMING}
        assert same == {k: v for k, v in entry.items() if k not in TIMING}, key
        assert got[key]["weights"]["sha256"] == entry["weights"]["sha256"]
        assert (tmp_path / got[key]["weights"]["path"]).is_file()  # written by the driver
    crashed = [e for (task, _, _), e in got.items() if task.endswith("crash.py:make")]
    assert len(crashed) == 2 and all("crash" in e["error"] and not e["satisfied"] for e in crashed)


def test_a_killed_ray_driver_resumes(tmp_path):
    config = _config(tmp_path, "resume", agents=["uniform-l1", "global-l1"], seeds=[0, 1])
    results = tmp_path / "resume.jsonl"
    proc = subprocess.Popen([sys.executable, "benchmarks/leaderboard.py", "--config", str(config), "--ray",
                             "--workers", "1"], cwd=ROOT, env=ONE_THREAD, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.time() + 600
    while time.time() < deadline and not (results.is_file() and results.read_text().count("\n") >= 1):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its local cluster
    proc.wait()
    first = results.read_text().splitlines()
    assert 1 <= len(first) < 4
    resumed = _grid(config, "--ray", "--workers", "1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{len(first)} entries done" in resumed.stderr
    lines = results.read_text().splitlines()
    assert lines[: len(first)] == first and len(lines) == 4
    assert {(e["agent"], e["seed"]) for e in map(json.loads, lines)} == {
        (a, s) for a in ("uniform-l1", "global-l1") for s in (0, 1)
    }


# The leaderboard script run with Ray made unimportable (a None entry in sys.modules makes
# `import ray` raise ImportError), as on a machine without the extra.
WITHOUT_RAY = """
import runpy, sys
sys.modules["ray"] = None
sys.argv = ["benchmarks/leaderboard.py", *sys.argv[1:]]
runpy.run_path("benchmarks/leaderboard.py", run_name="__main__")
"""


def test_without_ray_the_flag_says_what_to_install(tmp_path):
    run = subprocess.run([sys.executable, "-c", WITHOUT_RAY, "--config", str(_config(tmp_path, "x")), "--ray"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, env=ONE_THREAD)  # fmt: skip
    assert run.returncode == 2 and "pip install -e '.[ray]'" in run.stderr
    assert not (tmp_path / "x.jsonl").exists()
