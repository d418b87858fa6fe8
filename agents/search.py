"""Training an agent on PruneEnv and harvesting the masks it found.

Shared by the ``prune-env prune`` pipeline (prune_env.pipeline), the examples and the leaderboard: a callback that
records every finished episode (and applies a per-episode fine-tune schedule), and a function
that plays episodes with any SB3 / sb3-contrib policy (action masks and recurrent states
included) to collect candidate masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback


@dataclass
class Episode:
    """The final-step record of one episode."""

    accuracy: float
    costs: list[float]
    constraint_satisfied: bool
    masks: dict[str, list[int]]
    widths: dict[str, int]
    params_ratio: float
    flops_ratio: float
    finetune_steps: int = 0
    source: str = "train"  # "train", "deterministic" or "sampled"

    @classmethod
    def from_info(cls, info: dict, finetune_steps: int = 0, source: str = "train") -> Episode:
        return cls(
            accuracy=float(info["accuracy"]),
            costs=[float(c) for c in info["costs"]],
            constraint_satisfied=bool(info["constraint_satisfied"]),
            masks=info["masks"],
            widths=info["widths"],
            params_ratio=float(info["params_ratio"]),
            flops_ratio=float(info["flops_ratio"]),
            finetune_steps=finetune_steps,
            source=source,
        )


@dataclass
class TrainingLog:
    """Per-rollout curves of a training run (for plots and reports)."""

    timesteps: list[int] = field(default_factory=list)
    reward: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    multiplier: list[float] = field(default_factory=list)
    inside_budget: list[float] = field(default_factory=list)


class EpisodeRecorder(BaseCallback):
    """Records finished episodes and per-rollout curves; applies a fine-tune schedule.

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
        self.episodes: list[Episode] = []
        self.log = TrainingLog()
        self._since_rollout: list[Episode] = []

    def _apply_schedule(self) -> None:
        if self.schedule:
            part = min(int(len(self.schedule) * self.num_timesteps / self.total), len(self.schedule) - 1)
            self.prune_env.finetune_steps = self.schedule[part]

    def _on_training_start(self) -> None:
        self._apply_schedule()

    def _on_rollout_start(self) -> None:
        self._apply_schedule()

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if done and "accuracy" in info:
                episode = Episode.from_info(info, self.prune_env.finetune_steps)
                self.episodes.append(episode)
                self._since_rollout.append(episode)
        return True

    def _on_rollout_end(self) -> None:
        if not self._since_rollout:
            return
        recent = self._since_rollout
        self.log.timesteps.append(int(self.num_timesteps))
        self.log.reward.append(float(np.mean([e.accuracy for e in recent])))
        self.log.cost.append(float(np.mean([e.costs[0] for e in recent])))
        self.log.inside_budget.append(float(np.mean([e.constraint_satisfied for e in recent])))
        multiplier = getattr(self.model, "lagrange_multiplier", None)
        self.log.multiplier.append(
            float(np.atleast_1d(multiplier)[0]) if multiplier is not None else float("nan")
        )
        self._since_rollout = []
        if self.on_rollout is not None:
            self.on_rollout(self.log)


def play_episode(model, env, *, deterministic: bool, seed: int | None = None) -> dict:
    """One episode of ``model``'s policy on ``env`` (the wrapper chain it was trained on, or a
    PruneEnv); returns the final info."""
    from sb3_contrib import MaskablePPO, RecurrentPPO

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
        raise ValueError("harvesting needs a model trained on one env in a DummyVecEnv")
    return vec_env.envs[0]


def harvest(model, prune_env, *, sampled: int, seed: int = 0) -> list[Episode]:
    """The policy's deterministic episode and ``sampled`` stochastic ones, played through the
    model's own wrappers (action rescaling, adapters), with the env's current per-episode
    fine-tune (the last value of a schedule), so that their accuracies compare with the last
    training episodes'."""
    env = training_env(model)
    steps = prune_env.finetune_steps
    info = play_episode(model, env, deterministic=True, seed=seed)
    episodes = [Episode.from_info(info, steps, source="deterministic")]
    for i in range(sampled):
        info = play_episode(model, env, deterministic=False, seed=seed + 1 + i)
        episodes.append(Episode.from_info(info, steps, source="sampled"))
    return episodes


def best_feasible(episodes: Sequence[Episode]) -> Episode | None:
    """The most accurate episode within the budget (ties: the smaller first cost)."""
    feasible = [e for e in episodes if e.constraint_satisfied]
    if not feasible:
        return None
    return max(feasible, key=lambda e: (e.accuracy, -e.costs[0]))
