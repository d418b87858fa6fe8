"""Your own network from the command line: prune, evaluate from elsewhere, the leaderboard,
and bad references that stop before anything is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from user_task_files import write_task_file

from prune_env.app.cli import main
from prune_env.zoo.user_tasks import load_user_task, state_dict_sha256

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--timesteps",
    "64",
    "--finetune-epochs",
    "1",
    "--eval-samples",
    "200",
    "--limit",
    "0.5",
    "--no-progress",
]


def test_prune_and_evaluate_a_users_task_file(tmp_path, monkeypatch):
    task_file = write_task_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["prune", "--task", "my_task.py:make", *TINY, "--out", "run"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    masks = json.loads((tmp_path / "run" / "masks.json").read_text())
    reference = f"{task_file}:make"
    assert metrics["task"] == masks["task"] == reference  # recorded absolute: evaluable from anywhere
    assert masks["checkpoint_sha256"] == state_dict_sha256(load_user_task(reference).model)
    assert metrics["budget"]["satisfied"] and metrics["budget"]["value"] <= 0.5
    assert metrics["dense"]["test_accuracy"] > 0.6  # the user's trained network on its own test data
    assert metrics["onnx"] == "pruned_model.onnx"

    evaluated = subprocess.run(  # a fresh process in another folder re-imports the file
        [sys.executable, "-m", "prune_env", "evaluate", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert (
        f"{metrics['pruned']['test_accuracy']:.4f}" in evaluated.stdout and "reproduced" in evaluated.stdout
    )


def test_a_bad_reference_is_one_line_and_writes_nothing(tmp_path, capsys):
    shapes = write_task_file(
        tmp_path,
        name="wrong_shapes.py",
        body="def make():\n    x = torch.zeros(4, 3, 8, 8); y = torch.zeros(4, dtype=torch.long)\n"
        "    return {'model': SmallMLP(), 'train': (x, y), 'val': (x, y), 'test': (x, y)}\n",
    )
    for task in (f"{tmp_path}/missing.py:make", f"{shapes}:make", "no_such_package.tasks:make"):
        out = tmp_path / "out"
        assert main(["prune", "--task", task, *TINY, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("prune-env prune: error: task") and "\n" not in err, err
        assert not out.exists()


def test_a_leaderboard_grid_on_a_users_task_validates(tmp_path):
    task_file = write_task_file(tmp_path)
    config = yaml.safe_load((ROOT / "benchmarks" / "configs" / "smoke.yaml").read_text())
    config.update(
        tasks=[f"{task_file}:make"], agents=["uniform-l1"], seeds=[0], results=str(tmp_path / "r.jsonl")
    )
    config["budgets"] = [{"kind": "params", "limit": 0.5}]
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(config))
    run = [sys.executable, "benchmarks/leaderboard.py", "--config", str(tmp_path / "grid.yaml")]
    assert subprocess.run(run, capture_output=True, timeout=600, cwd=ROOT).returncode == 0
    entry = json.loads((tmp_path / "r.jsonl").read_text())
    assert entry["task"] == f"{task_file}:make" and entry["satisfied"] and "error" not in entry
    assert entry["weights"]["path"].endswith("my_task-make__params-0.5__uniform-l1__0.pt")
    validated = subprocess.run(
        [sys.executable, "benchmarks/validate.py", str(tmp_path / "r.jsonl")],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert validated.returncode == 0, validated.stdout[-2000:]
    assert "1/1 entries replayed" in validated.stdout
