"""Every example runs (tiny settings) and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_quickstart():
    out = run("quickstart.py")
    assert out.count("episode ") == 3 and "cost (params ratio)" in out


def test_train_ppo_lag():
    out = run("train_ppo_lag.py", "--timesteps", "64", "--limit", "0.5")
    assert "64 timesteps" in out and "inside the budget" in out


def test_custom_model_and_budget():
    out = run("custom_model_and_budget.py", "--episodes", "3", "--train-steps", "5")
    assert out.count("episode ") == 3 and "latency" in out


@pytest.mark.parametrize("task", ["fashion-mnist-mlp"])
def test_swap_algorithm(task):
    out = run("swap_algorithm.py", "--timesteps", "64", "--task", task)
    assert "maskable-ppo-penalty" in out and "6-tuple episode" in out


def test_my_task_file_prunes_from_the_command_line(tmp_path):
    env = {**os.environ, "PRUNE_ENV_CACHE": str(tmp_path / "cache")}  # the example trains and caches here
    command = [sys.executable, "-m", "prune_env", "prune", "--task", f"{EXAMPLES / 'my_task.py'}:fashion_cnn",
               "--limit", "0.5", "--timesteps", "32", "--finetune-epochs", "0", "--eval-samples", "200",
               "--no-progress", "--out", str(tmp_path / "run")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "my_task.py:fashion_cnn" in result.stdout and "(params 0." in result.stdout
    assert (tmp_path / "cache" / "examples" / "my_task_tiny_cnn.pt").is_file()
