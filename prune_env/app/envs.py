"""The problem and environments a run searches on: one seeded PruneProblem (for searches and
baselines), one seeded PruneEnv over it (for an agent), or N env copies in subprocesses.

With ``n_envs > 1`` each copy lives in its own process (SB3's ``SubprocVecEnv``), wrapped there
for the agent (:func:`agents.registry.wrap_for_agent`) and for SB3's episode statistics
(``Monitor``), with the torch threads of this process split between them. SB3 seeds copy ``i``
with ``seed + i``, so the same seed and N give the same search.
"""

from __future__ import annotations

import functools

import gymnasium as gym
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import SubprocVecEnv

from agents.registry import wrap_for_agent
from prune_env.app.config import PruneConfig
from prune_env.env import PruneEnv
from prune_env.problem import PruneProblem


def make_problem(cfg: PruneConfig) -> PruneProblem:
    """The seeded pruning instance of ``cfg`` (its fine-tune seeds drawn from ``cfg.seed``)."""
    torch.manual_seed(cfg.seed)
    return PruneProblem(
        cfg.task, budget=cfg.budget, budget_limit=cfg.limit, eval_samples=cfg.eval_samples,
        bn_recalibration=cfg.bn_recalibration, data_dir=cfg.data_dir, val_size=cfg.val_size,
        device=cfg.device, seed=cfg.seed,
    )  # fmt: skip


def make_env(cfg: PruneConfig, action_mode: str) -> PruneEnv:
    """The seeded environment an agent of ``cfg`` trains on, over :func:`make_problem`."""
    env = PruneEnv(problem=make_problem(cfg), action_mode=action_mode, observation=cfg.observation)
    env.reset(seed=cfg.seed)
    env.action_space.seed(cfg.seed)
    return env


def _agent_env(cfg: PruneConfig, action_mode: str, threads: int) -> gym.Env:
    """One copy, built inside its worker process."""
    torch.set_num_threads(threads)
    return Monitor(wrap_for_agent(cfg.agent, make_env(cfg, action_mode)))


def parallel_envs(cfg: PruneConfig, action_mode: str) -> SubprocVecEnv:
    """``cfg.n_envs`` wrapped copies in subprocesses, each with its share of the torch threads."""
    threads = max(1, torch.get_num_threads() // cfg.n_envs)
    return SubprocVecEnv(
        [functools.partial(_agent_env, cfg, action_mode, threads) for _ in range(cfg.n_envs)]
    )
