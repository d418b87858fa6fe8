"""Every searcher the leaderboard runs is a choice of the main job: `prune-env prune --agent NAME`
runs end to end, and a search spends what an RL agent with the same --timesteps trains on."""

from __future__ import annotations

import json

import pytest

from prune_env.app.baselines import BASELINES, BISECTION_STEPS, MATCHED, SEARCHER_INFO
from prune_env.app.cli import main

FAST = ["--timesteps", "12", "--finetune-epochs", "0", "--eval-samples", "200", "--episode-finetune", "0",
        "--limit", "0.5", "--no-progress"]  # fmt: skip


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_prune_with_a_searcher_runs_end_to_end(name, tmp_path):
    task = "fashion-mnist-cnn-w0.5" if name == "bn-scale" else "fashion-mnist-mlp"  # bn-scale needs BatchNorm
    out = tmp_path / name
    assert main(["prune", "--task", task, "--agent", name, *FAST, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["agent"] == name and metrics["budget"]["satisfied"]
    assert metrics["selected"]["params_ratio"] <= 0.5 and (out / "pruned_model.onnx").is_file()
    groups = len(metrics["groups"])
    expected = 12 // groups if name in MATCHED else None  # searches: timesteps // groups evaluations
    if expected is not None:
        assert metrics["search"]["evaluations"] == expected
    else:
        assert 1 <= metrics["search"]["evaluations"] <= BISECTION_STEPS + 1


def test_a_criterion_that_does_not_apply_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["prune", "--task", "fashion-mnist-mlp", "--agent", "bn-scale", *FAST, "--out", str(out)]) == 2
    )
    assert "BatchNorm" in capsys.readouterr().err


def test_every_searcher_is_listed_with_its_kind(capsys):
    assert set(SEARCHER_INFO) == set(BASELINES)
    assert main(["agents"]) == 0
    lines = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()}
    assert all(lines[name] == kind for name, (kind, _) in SEARCHER_INFO.items())
    assert lines["ppo-lag"] == "constrained"
