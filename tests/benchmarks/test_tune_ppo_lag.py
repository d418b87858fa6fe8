"""benchmarks/tune_ppo_lag.py on a tiny setting: the defaults are the first trials, a trial's value
is the search's own selected accuracy (rerun independently), and the study resumes."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import tune_ppo_lag
from prune_env.app.config import PruneConfig
from prune_env.app.envs import make_env
from prune_env.app.search import search_with_agent

ROOT = Path(__file__).resolve().parents[2]


def test_study_starts_from_the_defaults_scores_like_a_search_and_resumes(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = ["--task", "fashion-mnist-mlp", "--timesteps", "60", "--storage", storage]
    assert tune_ppo_lag.main([*command, "--trials", "2"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "study.jsonl").read_text().splitlines()]
    assert [r["params"]["agent"] for r in rows] == ["ppo-lag", "ppo-lag-scaled"]
    assert rows[0]["params"]["learning_rate"] == 3e-4 and rows[0]["params"]["n_steps"] == 128
    # trial 1 (scaled actions) never leaves the parameter budget, by construction
    assert rows[1]["inside_budget_last_quarter"] == 1.0 and rows[1]["selected_cost"] <= 0.1
    # trial 0 is the default ppo-lag search: the same search run here selects the same accuracy
    cfg = PruneConfig(task="fashion-mnist-mlp", agent="ppo-lag", seed=100, timesteps=60, progress=False)
    selection, _ = search_with_agent(make_env(cfg, "ratio"), cfg)
    assert rows[0]["value"] == selection.chosen.accuracy
    assert "| 0 |" in (tmp_path / "study.md").read_text()
    assert tune_ppo_lag.main([*command, "--trials", "3"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "study.jsonl").read_text().splitlines()]
    assert [r["number"] for r in rows] == [0, 1, 2]  # one more trial, the first two kept
