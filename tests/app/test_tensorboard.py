"""`--tensorboard DIR`: SB3's logs of the search (reward, episodic cost, multiplier, losses) and
the per-rollout accuracy / cost every agent is judged on, equal to the run's own curves."""

from __future__ import annotations

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from prune_env.app.cli import main
from prune_env.app.config import PruneConfig
from prune_env.app.envs import make_env
from prune_env.app.search import search_with_agent


def _scalars(folder) -> dict[str, list[float]]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_the_logs_hold_the_searchs_own_curves(tmp_path):
    cfg = PruneConfig(task="fashion-mnist-mlp", timesteps=256, eval_samples=200, limit=0.6, episode_finetune=[0],
                      tensorboard=str(tmp_path / "tb"), progress=False)  # fmt: skip
    _, log = search_with_agent(make_env(cfg, "ratio"), cfg)
    runs = sorted((tmp_path / "tb").iterdir())
    assert [r.name for r in runs] == ["ppo-lag-seed0_1"]
    scalars = _scalars(runs[0])
    for tag in ("rollout/ep_rew_mean", "rollout/ep_cost_mean", "train/lagrange_multiplier", "train/value_loss",
                "train/cost_value_loss", "train/policy_gradient_loss", "prune/inside_budget"):  # fmt: skip
        assert tag in scalars, sorted(scalars)
    assert len(log.reward) >= 2
    np.testing.assert_allclose(scalars["prune/accuracy"], log.reward, rtol=1e-6)
    np.testing.assert_allclose(scalars["prune/cost"], log.cost, rtol=1e-6)
    # the multiplier is logged after each update; the run's curve samples it at the next rollout's end
    assert scalars["train/lagrange_multiplier"][: len(log.multiplier) - 1] == pytest.approx(
        log.multiplier[1:], rel=1e-6
    )


def test_the_command_line_option_writes_a_run_folder(tmp_path):
    tiny = ["--task", "fashion-mnist-mlp", "--timesteps", "64", "--finetune-epochs", "0", "--eval-samples", "100",
            "--limit", "0.6", "--no-progress", "--agent", "ppo-penalty"]  # fmt: skip
    assert main(["prune", *tiny, "--out", str(tmp_path / "run"), "--tensorboard", str(tmp_path / "tb")]) == 0
    (run,) = (tmp_path / "tb").iterdir()
    assert run.name == "ppo-penalty-seed0_1" and "prune/cost" in _scalars(run)
