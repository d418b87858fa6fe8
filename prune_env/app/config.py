"""The configuration of one pruning run: the one place its defaults are defined.

The command line, the pipeline and the leaderboard all build a :class:`PruneConfig`; the
leaderboard's YAML keys are its fields (:data:`GRID_FIELDS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from prune_env.scored import ScoringProtocol
from prune_env.zoo.data import DEFAULT_VAL_SIZE
from prune_env.zoo.tasks import DEFAULT_TASK


@dataclass
class PruneConfig:
    """One `prune-env prune` run."""

    task: str = DEFAULT_TASK
    budget: str = "params"
    limit: float = 0.1
    agent: str = "ppo-lag"
    timesteps: int = 3000
    # The recovery fine-tune (prune_env.app.recovery): "quick" (Adam, cosine, 2 epochs) or "full"
    # (the task's pretraining recipe); finetune_epochs overrides the recipe's length.
    recipe: str = "quick"
    finetune_epochs: int | None = None
    # Final fine-tune against the dense network's softened outputs as well as the labels
    # (Hinton et al. 2015): loss = weight * T^2 * KL(teacher_T || student_T) + (1 - weight) * CE.
    distill: bool = False
    distill_temperature: float = 4.0
    distill_weight: float = 0.9
    seed: int = 0
    out: str = "runs/default"
    # Per-episode fine-tune steps over equal parts of training (the paper used 0, 32, 128).
    # Without it, networks near a 10% budget all score ~chance and the reward has no slope;
    # 32 steps in the second half make it informative (measured: 87.3% -> 90.0% test accuracy
    # on the default task at params <= 0.1).
    episode_finetune: list[int] = field(default_factory=lambda: [0, 32])
    action_mode: str | None = None  # None: the agent's preference
    # The env's observation ("auto": the summary in ratio mode, per-unit importance in mask
    # mode). The committed boards' grids set "units", the observation their entries were made with.
    observation: str = "auto"
    # A trained policy instead of an agent trained here: a policy file or "default" (the shipped
    # one); it proposes `evaluations` candidates (deterministic first, then sampled).
    policy: str | None = None
    evaluations: int = 16
    refine: bool = False  # with a policy: its deterministic answer, then a local search from it
    eval_samples: int = ScoringProtocol.eval_samples
    bn_recalibration: int = ScoringProtocol.bn_recalibration  # BatchNorm re-estimation batches per score
    sampled_episodes: int = 32  # stochastic policy episodes harvested after training
    n_envs: int = 1  # environments the agent learns from, each in its own process when > 1
    device: str = "auto"
    data_dir: str | None = None
    val_size: int = DEFAULT_VAL_SIZE  # validation images held out of the training set
    latency_batch: int = 64  # batch of the reported latency (1: single-image latency)
    tensorboard: str | None = None  # folder for SB3's TensorBoard logs of the search; None: no logs
    progress: bool = True

    def protocol(self) -> dict:
        """How every candidate of this run is scored: one protocol for every searcher in a
        comparison (RL candidates are compared at the schedule's last value, baselines scored
        with it)."""
        return {
            "eval_samples": self.eval_samples,
            "episode_finetune": list(self.episode_finetune),
            "bn_recalibration": self.bn_recalibration,
        }

    def __post_init__(self):
        if int(self.n_envs) < 1:
            raise ValueError(f"n_envs must be >= 1, got {self.n_envs}")
        if int(self.evaluations) < 1:
            raise ValueError(f"evaluations must be >= 1, got {self.evaluations}")
        if self.refine and self.policy is None:
            raise ValueError("refine applies to a trained policy's candidates: give policy=... (--policy)")
        if self.recipe not in ("quick", "full"):
            raise ValueError(f"recipe must be 'quick' or 'full', got {self.recipe!r}")
        if self.finetune_epochs is not None and int(self.finetune_epochs) < 0:
            raise ValueError(f"finetune_epochs must be >= 0, got {self.finetune_epochs}")
        if self.observation not in ("auto", "units", "summary"):
            raise ValueError(f"observation must be 'auto', 'units' or 'summary', got {self.observation!r}")
        if int(self.latency_batch) < 1:
            raise ValueError(f"latency_batch must be >= 1, got {self.latency_batch}")
        if not 0.0 < float(self.limit) <= 1.0:
            raise ValueError(f"limit is a pruned/dense ratio and must be in (0, 1], got {self.limit}")


# What varies per leaderboard entry, as opposed to what a grid sets once for all its entries.
ENTRY_FIELDS = ("task", "budget", "limit", "agent", "seed", "out", "progress")
GRID_FIELDS = tuple(f.name for f in fields(PruneConfig) if f.name not in ENTRY_FIELDS)
