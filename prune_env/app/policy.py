"""A pruning policy trained once over many instances, saved without pickles, and used to
answer a new instance in a handful of evaluations.

``train_policy`` trains an actor-critic agent of the registry (default ``ppo-lag-scaled``)
on PruneEnvs over a task list, one per budget kind, each drawing its limit per episode; the
policy file it writes is a zip of ``policy.json`` (the agent, the spaces, the network's
settings, what it was trained on and what that cost) and ``weights.pt`` (a state dict, read
back with ``torch.load(weights_only=True)``). Loading rebuilds the policy from classes this
package names, never from the file: no code is unpickled.

``propose`` plays the policy on an instance: its deterministic episode first, then sampled
ones, each scored under the problem's protocol.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from agents import make_agent
from agents.ppo_lag.policies import CostActorCriticPolicy
from agents.registry import get_agent_spec, wrap_for_agent
from prune_env.app.sampling import MIN_RATIO, scale_to_budget
from prune_env.budgets import make_budget_list
from prune_env.env import SUMMARY_NAMES, PruneEnv
from prune_env.errors import PruneEnvError
from prune_env.limits import LimitDistribution, parse_limits
from prune_env.problem import PruneProblem
from prune_env.scored import ScoredMask
from prune_env.zoo.sources import check_task
from prune_env.zoo.tasks import file_sha256

FORMAT = "prune-env-policy/1"
DEFAULT_POLICY = Path(__file__).parent / "policies" / "default.zip"
# What a policy file may name: the classes are this package's, looked up by these names.
POLICY_CLASSES = {"ActorCriticPolicy": ActorCriticPolicy, "CostActorCriticPolicy": CostActorCriticPolicy}
ACTIVATIONS = {
    "Tanh": torch.nn.Tanh,
    "ReLU": torch.nn.ReLU,
    "ELU": torch.nn.ELU,
    "LeakyReLU": torch.nn.LeakyReLU,
}
# The constructor settings written to the file (the rest are SB3's defaults).
_SETTINGS = ("net_arch", "log_std_init", "ortho_init", "n_costs", "cost_net_arch")


class PolicyFileError(PruneEnvError, ValueError):
    """A policy file that cannot be read, or that names something this package does not know."""


@dataclass
class PrunePolicy:
    """A loaded policy: the SB3 policy network, the agent whose wrappers it acts through, and
    what it was trained on (``meta``: tasks, budgets and limits, protocol, evaluations, CPU
    seconds)."""

    policy: ActorCriticPolicy
    agent: str
    meta: dict

    @property
    def tasks(self) -> list[str]:
        return list(self.meta["tasks"])

    def limits(self, budget: str) -> LimitDistribution | None:
        """The limits a budget kind was trained on (None: not trained on that budget)."""
        spec = self.meta["budgets"].get(budget)
        if spec is None:
            return None
        return parse_limits(make_budget_list(budget), spec)[0]  # JSON's {low, high} / {choices} forms

    def trained_on(self, task: str, budget: str, limit: float) -> bool:
        """Whether the instance (task, budget, limit) is one the policy could have met in
        training (a held-out benchmark refuses it)."""
        limits = self.limits(budget)
        return task in self.tasks and limits is not None and limits.contains(float(limit))

    def act(self, obs: np.ndarray, *, deterministic: bool) -> np.ndarray:
        action, _ = self.policy.predict(obs, deterministic=deterministic)
        return action


# --- training -------------------------------------------------------------------------------


class _EpisodeCounter(BaseCallback):
    """Counts scored episodes (the evaluations a policy's training spent) and, with ``log``,
    prints the mean accuracy of each rollout's episodes, so a long run shows it learns."""

    def __init__(self, log: bool = False):
        super().__init__()
        self.episodes, self.log = 0, log
        self._accuracies: list[float] = []

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if done:
                self.episodes += 1
                self._accuracies.append(float(info.get("accuracy", np.nan)))
        return True

    def _on_rollout_end(self) -> None:
        if self.log and self._accuracies:
            print(f"{self.num_timesteps} timesteps, {self.episodes} episodes: mean accuracy "
                  f"{np.nanmean(self._accuracies):.4f} over the last {len(self._accuracies)}", flush=True)  # fmt: skip
        self._accuracies = []


def _training_env(tasks, budget, limit, agent, scoring, seed, threads) -> gym.Env:
    torch.set_num_threads(threads)
    env = PruneEnv(list(tasks), action_mode="ratio", observation="summary", budget=budget,
                   budget_limit=limit, **scoring)  # fmt: skip
    env.reset(seed=seed)
    return Monitor(wrap_for_agent(agent, env))


def train_policy(
    tasks: Sequence[str],
    budgets: dict,
    *,
    agent: str = "ppo-lag-scaled",
    timesteps: int = 20000,
    seed: int = 0,
    out: str | os.PathLike = "policy.zip",
    eval_samples: int = 1000,
    finetune_steps: int = 0,
    bn_recalibration: int = 8,
    envs_per_budget: int = 1,
    progress: bool = False,
) -> dict:
    """Train one policy over ``tasks`` and every budget of ``budgets`` and write it to ``out``.

    Args:
        budgets: budget kind -> its limits (a number, a ``(low, high)`` range or a list), e.g.
            ``{"params": (0.05, 0.3), "flops": [0.15, 0.2, 0.4]}``: one environment per kind
            (``envs_per_budget`` each), in its own process when there are several.
        finetune_steps, bn_recalibration: how training episodes are scored (by default no
            fine-tune and 8 batches of BatchNorm re-estimation: cheap, and not flat near small
            budgets as raw accuracy is).

    Returns the metadata written into the file.
    """
    spec = get_agent_spec(agent)
    if spec.cls.policy_aliases.get(spec.policy, None) not in POLICY_CLASSES.values():
        raise ValueError(f"train-policy supports the actor-critic agents (PPO family), not {agent!r}")
    tasks = [check_task(t) for t in tasks]
    if not budgets:
        raise ValueError("give at least one budget kind with its limits")
    for kind, limit in budgets.items():
        parse_limits(make_budget_list(kind), limit)  # checked before any work
    scoring = {
        "eval_samples": eval_samples,
        "finetune_steps": finetune_steps,
        "bn_recalibration": bn_recalibration,
    }
    plan = [(kind, limit) for kind, limit in budgets.items() for _ in range(envs_per_budget)]
    threads = max(1, torch.get_num_threads() // len(plan))
    factories = [
        (
            lambda kind=kind, limit=limit, i=i: _training_env(
                tasks, kind, limit, agent, scoring, seed + i, threads
            )
        )
        for i, (kind, limit) in enumerate(plan)
    ]
    start_wall, start_cpu = time.time(), _cpu_seconds()
    # fork: the workers are this process's children, so their CPU time is counted when they end
    vec_env = SubprocVecEnv(factories, start_method="fork") if len(factories) > 1 else DummyVecEnv(factories)
    try:
        model = make_agent(agent, vec_env, seed=seed, device="cpu")
        counter = _EpisodeCounter(log=not progress)
        model.learn(timesteps, callback=counter, progress_bar=progress)
    finally:
        vec_env.close()
    meta = {
        "format": FORMAT,
        "agent": agent,
        "tasks": tasks,
        "budgets": {
            kind: parse_limits(make_budget_list(kind), limit)[0].to_json() for kind, limit in budgets.items()
        },
        "protocol": scoring,
        "observation": list(SUMMARY_NAMES),
        "timesteps": int(timesteps),
        "evaluations": counter.episodes,
        "seed": seed,
        "wall_seconds": round(time.time() - start_wall, 1),
        "cpu_seconds": round(_cpu_seconds() - start_cpu, 1),
        "torch": str(torch.__version__),
    }
    save_policy(model.policy, agent, meta, out)
    return meta


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the environment workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# --- the file -------------------------------------------------------------------------------


def _space_to_json(space: gym.spaces.Box) -> dict:
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"policy files hold Box spaces only, got {space}")
    return {"low": space.low.tolist(), "high": space.high.tolist(), "dtype": str(space.dtype)}


def _space_from_json(data: dict) -> gym.spaces.Box:
    if data.get("dtype") != "float32":
        raise PolicyFileError(f"a policy space must be float32, got {data.get('dtype')!r}")
    low, high = np.asarray(data["low"], dtype=np.float32), np.asarray(data["high"], dtype=np.float32)
    return gym.spaces.Box(low, high, dtype=np.float32)


def save_policy(policy: ActorCriticPolicy, agent: str, meta: dict, path: str | os.PathLike) -> None:
    """Write ``policy`` (its settings as JSON, its weights as a state dict) to a zip at ``path``."""
    name = type(policy).__name__
    if POLICY_CLASSES.get(name) is not type(policy):
        raise ValueError(f"cannot save a {name}: policy files hold {sorted(POLICY_CLASSES)}")
    params = policy._get_constructor_parameters()
    activation = params["activation_fn"].__name__
    if activation not in ACTIVATIONS:
        raise ValueError(f"cannot save activation {activation}: known {sorted(ACTIVATIONS)}")
    header = {
        **meta,
        "format": FORMAT,
        "agent": agent,
        "policy_class": name,
        "activation_fn": activation,
        "settings": {k: params[k] for k in _SETTINGS if k in params},
        "observation_space": _space_to_json(policy.observation_space),
        "action_space": _space_to_json(policy.action_space),
    }
    weights = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in policy.state_dict().items()}, weights)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("policy.json", json.dumps(header, indent=2, sort_keys=True))
        z.writestr("weights.pt", weights.getvalue())


def load_policy(path: str | os.PathLike) -> PrunePolicy:
    """A policy file written by :func:`save_policy` (``"default"``: the shipped one).

    Raises:
        PolicyFileError: not a policy file, an unknown format, class or activation, or
            weights that do not fit the network the header describes.
    """
    path = DEFAULT_POLICY if str(path) == "default" else Path(path)
    if not path.is_file():
        raise PolicyFileError(f"no policy file at {path} (train one with `prune-env train-policy`)")
    try:
        with zipfile.ZipFile(path) as z:
            header = json.loads(z.read("policy.json"))
            weights = z.read("weights.pt")
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise PolicyFileError(f"{path} is not a prune-env policy file: {exc}") from exc
    if header.get("format") != FORMAT:
        raise PolicyFileError(f"{path}: format {header.get('format')!r}, expected {FORMAT!r}")
    cls = POLICY_CLASSES.get(header.get("policy_class"))
    activation = ACTIVATIONS.get(header.get("activation_fn"))
    if cls is None or activation is None:
        raise PolicyFileError(
            f"{path}: unknown policy class {header.get('policy_class')!r} or activation "
            f"{header.get('activation_fn')!r}; known {sorted(POLICY_CLASSES)} and {sorted(ACTIVATIONS)}"
        )
    settings = dict(header["settings"])
    if cls is ActorCriticPolicy:
        settings = {k: v for k, v in settings.items() if k not in ("n_costs", "cost_net_arch")}
    try:
        policy = cls(
            _space_from_json(header["observation_space"]), _space_from_json(header["action_space"]),
            lambda _: 0.0, activation_fn=activation, **settings,
        )  # fmt: skip
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
        policy.load_state_dict(state, strict=True)
    except pickle.UnpicklingError as exc:  # weights_only refuses anything but tensors and containers
        raise PolicyFileError(f"{path}: weights.pt holds more than tensors, refused: {exc}") from exc
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise PolicyFileError(
            f"{path}: the weights do not fit the policy the header describes: {exc}"
        ) from exc
    policy.set_training_mode(False)
    meta = {k: v for k, v in header.items() if k not in ("settings", "observation_space", "action_space")}
    meta.update(path=str(path), sha256=file_sha256(path))
    return PrunePolicy(policy, header["agent"], meta)


# --- using it -------------------------------------------------------------------------------


def policy_env(policy: PrunePolicy, problem: PruneProblem) -> gym.Env:
    """``problem`` as the policy sees it: ratio mode, the summary observation, its agent's wrappers."""
    env = PruneEnv(problem=problem, action_mode="ratio", observation="summary")
    if env.observation_space.shape != policy.policy.observation_space.shape:
        raise PolicyFileError(
            f"the policy reads observations of shape {policy.policy.observation_space.shape}, "
            f"this env makes {env.observation_space.shape}"
        )
    return wrap_for_agent(policy.agent, env)


def propose(
    policy: PrunePolicy, problem: PruneProblem, evaluations: int, seed: int = 0, *, refine: bool = False
) -> list[ScoredMask]:
    """``evaluations`` candidates of the policy on ``problem``, each scored under the problem's
    protocol: its deterministic episode first, then sampled episodes (torch seeded with
    ``seed``), or with ``refine`` a local search from the deterministic answer: each further
    candidate changes one group's keep-ratio of the best feasible so far by a log-normal factor
    and is scaled to the budget (evolution's mutation, :func:`prune_env.app.baselines.evolution`)."""
    if evaluations < 1:
        raise ValueError(f"evaluations must be >= 1, got {evaluations}")
    env = policy_env(policy, problem)
    records = []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for i in range(1 if refine else evaluations):
            deterministic = i == 0
            obs, _ = env.reset(seed=seed + i)
            while True:
                obs, _, terminated, truncated, info = env.step(policy.act(obs, deterministic=deterministic))
                if terminated or truncated:
                    break
            records.append(info["scored"].with_source("deterministic" if deterministic else "sampled"))
    if refine:
        records += _refine(problem, records[0], evaluations - 1, np.random.default_rng(seed))
    return records


def _refine(problem: PruneProblem, start: ScoredMask, evaluations: int, rng: np.random.Generator,
            sigma: float = 0.5) -> list[ScoredMask]:  # fmt: skip
    """A (1+1) local search from ``start``: mutate the best feasible candidate so far."""
    best = start
    records = []
    for _ in range(evaluations):
        ratios = np.asarray([best.widths[g.name] / g.width for g in problem.groups], dtype=np.float64)
        group = rng.integers(problem.num_groups)
        ratios[group] = np.clip(ratios[group] * np.exp(sigma * rng.normal()), MIN_RATIO, 1.0)
        record = problem.score_ratios(scale_to_budget(problem, ratios), source="refined")
        records.append(record)
        if record.satisfied and (not best.satisfied or record.accuracy > best.accuracy):
            best = record
    return records
