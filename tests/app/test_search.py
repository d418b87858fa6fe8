"""An agent's search: every episode recorded as a ScoredMask, the schedule sets the protocol,
candidates compare only under one protocol, and the choice is the best feasible one."""

from __future__ import annotations

import pytest

from prune_env.app.config import PruneConfig
from prune_env.app.envs import make_env
from prune_env.app.search import search_with_agent
from prune_env.app.selection import best_feasible
from prune_env.scored import ScoredMask, ScoringProtocol


def _record(accuracy: float, cost: float, limit: float = 0.5) -> ScoredMask:
    return ScoredMask({"a": [0]}, {"a": 1}, accuracy, [cost], {"params": cost}, [limit], cost, cost,
                      cost <= limit, ScoringProtocol())  # fmt: skip


def test_best_feasible_prefers_accuracy_then_lower_cost():
    over, low, high, high_cheap = _record(0.99, 0.9), _record(0.5, 0.1), _record(0.8, 0.4), _record(0.8, 0.3)
    assert best_feasible([over, low, high, high_cheap]) is high_cheap
    assert best_feasible([over]) is None


@pytest.fixture(scope="module")
def searched():
    cfg = PruneConfig(task="fashion-mnist-mlp", limit=0.6, timesteps=256, eval_samples=200, sampled_episodes=3,
                      episode_finetune=[0, 2], progress=False)  # fmt: skip
    env = make_env(cfg, "ratio")
    selection, log = search_with_agent(env, cfg)
    return cfg, env, selection, log


def test_every_training_episode_and_harvest_is_counted(searched):
    cfg, env, selection, log = searched
    # two rollouts of PPO's 128 steps; one record per finished episode
    assert log.timesteps == [128, 256] and selection.episodes == 256 // env.num_groups
    assert selection.evaluations == selection.episodes + 1 + cfg.sampled_episodes
    assert log.timesteps and len(log.reward) == len(log.cost) == len(log.multiplier)


def test_candidates_share_the_last_protocol_and_the_choice_is_the_best(searched):
    # the schedule [0, 2] over 256 steps: the second rollout (and the harvest) fine-tune 2 steps
    _, env, selection, _ = searched
    chosen = selection.chosen
    assert chosen.protocol == env.problem.protocol == ScoringProtocol(eval_samples=200, finetune_steps=2)
    assert chosen.satisfied and chosen.cost <= 0.6
    assert chosen.source in ("train", "deterministic", "sampled")
    assert 1 <= selection.feasible_candidates <= selection.candidates <= selection.evaluations


def test_policy_entropy_is_the_gaussian_entropy_of_a_box_policy():
    import math

    from stable_baselines3 import PPO, SAC
    from toy_envs import GreedyBreaksLimitEnv

    from prune_env.app.search import policy_entropy

    model = PPO("MlpPolicy", GreedyBreaksLimitEnv(action="box"), n_steps=16, batch_size=16, seed=0)
    assert math.isnan(policy_entropy(model))  # nothing collected yet
    model.learn(16)
    log_std = float(model.policy.log_std.detach()[0])
    assert policy_entropy(model) == pytest.approx(0.5 * math.log(2 * math.pi * math.e) + log_std, rel=1e-5)
    assert math.isnan(policy_entropy(SAC("MlpPolicy", GreedyBreaksLimitEnv(action="box"), seed=0)))


def test_a_wrappers_probe_evaluations_count_in_the_search():
    # ppo-lag-sensitive scores every group alone and the dense network once before training
    cfg = PruneConfig(task="fashion-mnist-mlp", agent="ppo-lag-sensitive", limit=0.6, timesteps=40,
                      eval_samples=50, sampled_episodes=1, progress=False)  # fmt: skip
    env = make_env(cfg, "ratio")
    selection, _ = search_with_agent(env, cfg, overrides=dict(n_steps=20, batch_size=10, n_epochs=1))
    assert selection.evaluations == selection.episodes + 2 + env.num_groups + 1
