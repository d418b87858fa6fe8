"""Mask selection by an RL agent: train it on PruneEnv, record every episode, harvest the policy's
own episodes, and choose the most accurate mask within the budget.

The recorder applies the per-episode fine-tune schedule; candidates are compared only under
one scoring protocol (the schedule's last value), so accuracies are comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch as th
from sb3_contrib import MaskablePPO, RecurrentPPO
from stable_baselines3.common.callbacks import BaseCallback

from agents import make_agent
from agents.registry import get_agent_spec, wrap_for_agent
from prune_env.app.config import PruneConfig
from prune_env.app.envs import parallel_envs
from prune_env.app.selection import Selection, best_feasible
from prune_env.env import PruneEnv
from prune_env.errors import NoFeasibleMaskError
from prune_env.scored import ScoredMask


@dataclass
class TrainingLog:
    """Per-rollout curves of a training run (for plots and reports)."""

    timesteps: list[int] = field(default_factory=list)
    reward: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    multiplier: list[float] = field(default_factory=list)
    inside_budget: list[float] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)  # the policy's, on the rollout's observations


class EpisodeRecorder(BaseCallback):
    """Records every finished episode's :class:`ScoredMask` and per-rollout curves (also logged as
    ``prune/accuracy``, ``prune/cost``, ``prune/inside_budget``); applies a per-episode fine-tune
    schedule.

    Args:
        env: the PruneEnv being trained on (``env.unwrapped``), to set ``finetune_steps``.
        schedule: fine-tune steps per equal part of training, e.g. ``[0, 32, 128]`` for the
            paper's thirds; ``None`` leaves the env as it is.
        total_timesteps: the run's length, to place the schedule's parts.
        on_rollout: optional ``f(log)`` called after every rollout (live figures).
    """

    def __init__(self, env, schedule: Sequence[int] | None = None, total_timesteps: int = 1, on_rollout=None):
        super().__init__()
        self.prune_env = env
        self.schedule = list(schedule) if schedule else None
        self.total = max(int(total_timesteps), 1)
        self.on_rollout = on_rollout
        self.episodes: list[ScoredMask] = []
        self.episode_timesteps: list[int] = []  # when each recorded episode finished
        self.log = TrainingLog()
        self._since_rollout: list[ScoredMask] = []

    def _apply_schedule(self) -> None:
        if self.schedule:
            part = min(int(len(self.schedule) * self.num_timesteps / self.total), len(self.schedule) - 1)
            self.prune_env.finetune_steps = self.schedule[part]
            # the environments trained on (other processes when there are several)
            self.training_env.env_method("set_scoring", finetune_steps=self.schedule[part])

    def _on_training_start(self) -> None:
        self._apply_schedule()

    def _on_rollout_start(self) -> None:
        self._apply_schedule()

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if done and "scored" in info:
                record = info["scored"].with_source("train")
                self.episodes.append(record)
                self.episode_timesteps.append(int(self.num_timesteps))
                self._since_rollout.append(record)
        return True

    def _on_rollout_end(self) -> None:
        if not self._since_rollout:
            return
        recent = self._since_rollout
        self.log.timesteps.append(int(self.num_timesteps))
        self.log.reward.append(float(np.mean([e.accuracy for e in recent])))
        self.log.cost.append(float(np.mean([e.cost for e in recent])))
        self.log.inside_budget.append(float(np.mean([e.satisfied for e in recent])))
        multiplier = getattr(self.model, "lagrange_multiplier", None)
        self.log.multiplier.append(
            float(np.atleast_1d(multiplier)[0]) if multiplier is not None else float("nan")
        )
        self.log.entropy.append(policy_entropy(self.model))
        # Into SB3's logger too (TensorBoard, when the run writes it): what every agent is judged
        # on, whatever reward it trains on (a penalty agent's ep_rew_mean includes the penalty).
        for key, values in (("accuracy", self.log.reward), ("cost", self.log.cost),
                            ("inside_budget", self.log.inside_budget), ("policy_entropy", self.log.entropy)):  # fmt: skip
            self.logger.record(f"prune/{key}", values[-1])
        self.logger.record("prune/finetune_steps", self.prune_env.finetune_steps)
        self._since_rollout = []
        if self.on_rollout is not None:
            self.on_rollout(self.log)


def policy_entropy(model) -> float:
    """Mean entropy of an on-policy agent's action distribution over its last rollout's
    observations (how much it still explores); NaN where it cannot be read (off-policy agents,
    recurrent policies, dict observations)."""
    buffer, policy = getattr(model, "rollout_buffer", None), getattr(model, "policy", None)
    if (
        buffer is None
        or not hasattr(policy, "get_distribution")
        or not isinstance(buffer.observations, np.ndarray)
    ):
        return float("nan")
    seen = buffer.observations[: buffer.buffer_size if buffer.full else buffer.pos]
    if seen.size == 0:
        return float("nan")
    # (steps, envs, *shape) while collecting; SB3 flattens it in place once it trains on it
    obs = th.as_tensor(seen.reshape(-1, *policy.observation_space.shape), device=model.device)
    try:
        with th.no_grad():
            return float(policy.get_distribution(obs).entropy().mean())
    except (TypeError, RuntimeError, NotImplementedError):
        return float("nan")


def probe_evaluations(model) -> int:
    """Evaluations the training environments spent before the first episode (a wrapper's
    ``probe_evaluations``, such as SensitivityFeatures'), so that searches compare at equal cost.
    Read while the environments are open (with several, they live in other processes)."""
    vec_env = model.get_env()
    if vec_env is None or not vec_env.has_attr("probe_evaluations"):
        return 0
    return int(sum(vec_env.get_attr("probe_evaluations")))


def play_episode(model, env, *, deterministic: bool, seed: int | None = None) -> dict:
    """One episode of ``model``'s policy on ``env`` (the wrapper chain it was trained on, or a
    PruneEnv); returns the final info."""
    obs, _ = env.reset(seed=seed)
    state, start = None, np.ones((1,), dtype=bool)
    while True:
        if isinstance(model, MaskablePPO):
            masks = env.get_wrapper_attr("action_masks")()
            action, _ = model.predict(obs, deterministic=deterministic, action_masks=masks)
        elif isinstance(model, RecurrentPPO):
            action, state = model.predict(obs, state=state, episode_start=start, deterministic=deterministic)
            start = np.zeros((1,), dtype=bool)
        else:
            action, _ = model.predict(obs, deterministic=deterministic)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return info


def training_env(model):
    """The wrapper chain ``model`` trains on (its single environment), for extra episodes."""
    vec_env = model.get_env()
    if vec_env is None or vec_env.num_envs != 1 or not hasattr(vec_env, "envs"):
        raise ValueError("harvesting needs a model trained on one env in a DummyVecEnv, or an env to play on")
    return vec_env.envs[0]


def harvest(model, *, sampled: int, seed: int = 0, env: gym.Env | None = None) -> list[ScoredMask]:
    """The policy's deterministic episode and ``sampled`` stochastic ones, played through the
    model's own wrappers (action rescaling, adapters) under the env's current protocol (the
    last value of a schedule), so that they compare with the last training episodes.

    Args:
        env: where to play them (the same wrappers as training); default the model's one
            training environment.
    """
    env = env if env is not None else training_env(model)
    records = [play_episode(model, env, deterministic=True, seed=seed)["scored"].with_source("deterministic")]
    for i in range(sampled):
        info = play_episode(model, env, deterministic=False, seed=seed + 1 + i)
        records.append(info["scored"].with_source("sampled"))
    return records


def default_action_mode(agent: str) -> str:
    """Ratio mode (one keep-fraction per group) learns in minutes on a CPU; mask mode (one bit
    per unit) needs far longer runs, so it is used only where an agent requires it."""
    return "mask" if get_agent_spec(agent).action_space is gym.spaces.MultiBinary else "ratio"


def search_with_agent(
    env: PruneEnv,
    cfg: PruneConfig,
    on_rollout: Callable[[TrainingLog], None] | None = None,
    overrides: dict | None = None,
) -> tuple[Selection, TrainingLog]:
    """Train ``cfg.agent`` on ``env`` and choose the most accurate feasible mask it found.

    Args:
        overrides: hyperparameters replacing the agent's defaults (a tuning study's trial).

    Raises:
        NoFeasibleMaskError: no training or harvested episode met the budget.
    """
    parallel = parallel_envs(cfg, env.action_mode) if cfg.n_envs > 1 else None
    try:
        model = make_agent(
            cfg.agent, parallel or env, seed=cfg.seed, device="cpu", tensorboard_log=cfg.tensorboard,
            **(overrides or {}),
        )  # fmt: skip
        recorder = EpisodeRecorder(env, cfg.episode_finetune, cfg.timesteps, on_rollout=on_rollout)
        model.learn(
            cfg.timesteps,
            callback=recorder,
            progress_bar=cfg.progress,
            tb_log_name=f"{cfg.agent}-seed{cfg.seed}",
        )
        probes = probe_evaluations(model)
    finally:
        if parallel is not None:
            parallel.close()
    candidates = [e for e in recorder.episodes if e.protocol == env.problem.protocol]
    # With several environments (in other processes), the policy's own episodes are played here,
    # on this process's copy behind the same wrappers.
    local = wrap_for_agent(cfg.agent, env) if parallel is not None else None
    harvested = harvest(model, sampled=cfg.sampled_episodes, seed=cfg.seed, env=local)
    candidates += harvested
    chosen = best_feasible(candidates)
    if chosen is None:
        lowest = min(candidates, key=lambda e: e.cost)
        raise NoFeasibleMaskError(
            f"no episode of {cfg.agent} satisfied the budget {cfg.budget} <= {cfg.limit:g} "
            f"(lowest cost {lowest.cost:.4f} over {len(candidates)} episodes); "
            "train longer (--timesteps) or relax the limit"
        )
    selection = Selection(
        chosen=chosen,
        evaluations=len(recorder.episodes) + len(harvested) + probes,
        candidates=len(candidates),
        feasible_candidates=sum(e.satisfied for e in candidates),
        episodes=len(recorder.episodes),
        history=(*recorder.episodes, *harvested),
    )
    return selection, recorder.log
