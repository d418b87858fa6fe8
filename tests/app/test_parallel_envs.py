"""`n_envs`: one search learning from N environments in subprocesses; the fine-tune schedule
reaches every copy, harvesting plays here, and the same seed and N give the same result."""

from __future__ import annotations

import json

from prune_env.app.cli import main
from prune_env.app.config import PruneConfig
from prune_env.app.envs import make_env
from prune_env.app.search import search_with_agent

# 512 steps: two rollouts of 2 x 128 steps, so the schedule [0, 4] switches at the second one
CFG = dict(
    task="fashion-mnist-mlp", timesteps=512, eval_samples=100, limit=0.6, sampled_episodes=2, progress=False
)


def test_two_environments_feed_one_search_and_replay():
    cfg = PruneConfig(**CFG, n_envs=2, episode_finetune=[0, 4])
    first, _ = search_with_agent(make_env(cfg, "ratio"), cfg)
    again, _ = search_with_agent(make_env(cfg, "ratio"), cfg)
    assert first.chosen.masks == again.chosen.masks and first.chosen.accuracy == again.chosen.accuracy
    # 512 steps of 2-step episodes over 2 envs: 256 training episodes, + 1 deterministic + 2 sampled
    assert first.episodes == 256 and first.evaluations == 259
    assert first.chosen.satisfied and first.chosen.protocol.finetune_steps == 4


def test_the_schedule_reaches_the_other_processes():
    cfg = PruneConfig(**CFG, n_envs=2, episode_finetune=[0, 4])
    env = make_env(cfg, "ratio")
    from prune_env.app import search

    seen = []
    original = search.EpisodeRecorder._on_step

    def spy(self):
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if done:
                seen.append((self.num_timesteps, info["scored"].protocol.finetune_steps))
        return original(self)

    search.EpisodeRecorder._on_step = spy
    try:
        search_with_agent(env, cfg)
    finally:
        search.EpisodeRecorder._on_step = original
    assert {steps for _, steps in seen} == {0, 4}
    switch = min(t for t, steps in seen if steps == 4)
    assert all(steps == 4 for t, steps in seen if t > switch)  # every copy scores under the new value


def test_n_envs_from_the_command_line(tmp_path):
    tiny = ["--task", "fashion-mnist-mlp", "--timesteps", "128", "--finetune-epochs", "0", "--eval-samples", "100",
            "--limit", "0.6", "--no-progress", "--agent", "ppo-penalty", "--n-envs", "2"]  # fmt: skip
    assert main(["prune", *tiny, "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["n_envs"] == 2 and metrics["budget"]["satisfied"]
