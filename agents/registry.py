"""Named agents for scripts and leaderboards: ``make_agent(name, env, **overrides)``.

Constrained agents (``AgentSpec.constrained``: ``ppo-lag``, ``ppo-lag-scaled``, ``ppo-lag-paper``,
``ppo-pid-lag``, ``cpo``, ``sac-lag``, ``p3o``, ``saute-ppo``) read the cost from ``info`` and
take ``cost_limit`` (default the env's ``budget_limit``), so they run on any Gymnasium env that
reports ``info["cost"]`` (``ppo-lag-scaled`` and ``ppo-lag-sensitive`` on PruneEnv only: they read
its budget estimate or score its masks); the ``*-penalty`` agents are unconstrained algorithms trained on
:class:`prune_env.wrappers.CostPenalty` (reward minus ``penalty_coef`` times cost), the
fixed-penalty baseline; ``amc-ddpg`` meets PruneEnv's budget by clipping its actions.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RescaleAction
from sb3_contrib import TRPO, MaskablePPO, RecurrentPPO
from stable_baselines3 import A2C, DDPG, PPO, TD3
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise
from stable_baselines3.common.vec_env import VecEnv

from agents.common.noise import DecayingNormalNoise
from agents.cpo import CPO
from agents.hyperparams import a2c, ddpg, ppo, sac, td3, trpo
from agents.p3o import P3O
from agents.ppo_lag import PPOLag
from agents.sac_lag import SACLag
from prune_env.wrappers import (
    ClipToBudget,
    CostOverLimit,
    CostPenalty,
    MultiBinaryAsMultiDiscrete,
    Saute,
    ScaleToBudget,
    SensitivityFeatures,
)


@dataclass(frozen=True)
class AgentSpec:
    name: str
    cls: type
    policy: str
    defaults: dict
    penalty: bool
    action_space: type | None  # required action space type, if any
    description: str
    clip_to_budget: bool = False  # AMC: every action clipped so that the episode meets the budget
    scale_to_budget: bool = False  # actions read as shares of the feasible range (ScaleToBudget)
    sensitivity: bool = False  # each group's measured pruning sensitivity in the observation
    action_noise: Callable[[int], ActionNoise] | None = None  # default exploration noise, by action size
    constrained: bool = False  # solves "episodic cost <= cost_limit" on any env that reports info["cost"]
    saute: bool = False  # an unconstrained algorithm on the Saute-wrapped env
    paper: str = ""


AGENTS: dict[str, AgentSpec] = {
    s.name: s
    for s in [
        AgentSpec("ppo-lag", PPOLag, "MlpPolicy", ppo.PPO_LAG, False, None,
                  "PPO-Lagrangian, projected-gradient multiplier from 0 (lr 5), cost advantage scaled "
                  "with the reward's: the paper's method with settings tuned on PruneEnv",
                  constrained=True, paper="Ray, Achiam & Amodei 2019; Malik et al. ICPR 2022"),
        AgentSpec("ppo-lag-scaled", PPOLag, "MlpPolicy", ppo.PPO_LAG, False, gym.spaces.Box,
                  "ppo-lag on ScaleToBudget: each keep-ratio a share of what the budget still allows, "
                  "so every episode meets the budget by the env's estimate (ratio mode, PruneEnv only)",
                  constrained=True, scale_to_budget=True),
        AgentSpec("ppo-lag-scaled-tuned", PPOLag, "MlpPolicy", ppo.PPO_LAG_SCALED_TUNED, False, gym.spaces.Box,
                  "ppo-lag-scaled with the Optuna study's best hyperparameters (agents/hyperparams/ppo.py)",
                  constrained=True, scale_to_budget=True),
        AgentSpec("ppo-lag-sensitive", PPOLag, "MlpPolicy", ppo.PPO_LAG, False, gym.spaces.Box,
                  "ppo-lag observing each group's accuracy drop when pruned alone (SensitivityFeatures, "
                  "measured once: one evaluation per group; ratio mode, PruneEnv only)",
                  constrained=True, sensitivity=True),
        AgentSpec("ppo-lag-paper", PPOLag, "MlpPolicy", ppo.PPO_LAG_PAPER, False, None,
                  "PPO-Lagrangian with the paper's settings: softplus multiplier from 1 (lr 1), "
                  "cost GAE lambda 1, cost advantage only centred",
                  constrained=True, paper="Malik et al., ICPR 2022"),
        AgentSpec("ppo-pid-lag", PPOLag, "MlpPolicy", ppo.PPO_PID_LAG, False, None,
                  "PPO-Lagrangian with a PID multiplier (Stooke et al. 2020)",
                  constrained=True, paper="Stooke, Achiam & Abbeel, ICML 2020"),
        AgentSpec("cpo", CPO, "MlpPolicy", ppo.CPO, False, None,
                  "CPO: trust-region step on the linearised cost constraint, recovery when infeasible",
                  constrained=True, paper="Achiam et al., ICML 2017"),
        AgentSpec("sac-lag", SACLag, "MlpPolicy", sac.SAC_LAG, False, gym.spaces.Box,
                  "SAC-Lagrangian: off-policy SAC with a cost critic and a multiplier (ratio mode)",
                  constrained=True, paper="Ha et al., CoRL 2020"),
        AgentSpec("p3o", P3O, "MlpPolicy", ppo.P3O, False, None,
                  "P3O: PPO with an exact ReLU penalty on the cost surrogate (Zhang et al. 2022)",
                  constrained=True, paper="Zhang et al., IJCAI 2022"),
        AgentSpec("saute-ppo", PPO, "MlpPolicy", ppo.SAUTE_PPO, False, None,
                  "Sauté PPO: PPO with the remaining budget in the state, reward replaced once spent",
                  constrained=True, saute=True, paper="Sootla et al., ICML 2022"),
        AgentSpec("ppo-penalty", PPO, "MlpPolicy", ppo.PPO, True, None,
                  "PPO on reward - coef * cost"),
        AgentSpec("maskable-ppo-penalty", MaskablePPO, "MlpPolicy", ppo.PPO, True, gym.spaces.MultiBinary,
                  "sb3-contrib MaskablePPO on reward - coef * cost (mask mode)"),
        AgentSpec("a2c-penalty", A2C, "MlpPolicy", a2c.A2C, True, None,
                  "A2C on reward - coef * cost"),
        AgentSpec("trpo-penalty", TRPO, "MlpPolicy", trpo.TRPO, True, None,
                  "sb3-contrib TRPO on reward - coef * cost"),
        AgentSpec("recurrent-ppo-penalty", RecurrentPPO, "MlpLstmPolicy", ppo.RECURRENT_PPO, True, None,
                  "sb3-contrib RecurrentPPO (LSTM) on reward - coef * cost"),
        AgentSpec("td3-ratio-penalty", TD3, "MlpPolicy", td3.TD3, True, gym.spaces.Box,
                  "TD3 on reward - coef * cost (ratio mode: one keep-fraction per group)",
                  action_noise=lambda dim: NormalActionNoise(np.zeros(dim), 0.1 * np.ones(dim))),
        AgentSpec("amc-ddpg", DDPG, "MlpPolicy", ddpg.DDPG, False, gym.spaces.Box,
                  "AMC (He et al. 2018): DDPG on keep-ratios, actions clipped so every episode meets the budget",
                  clip_to_budget=True,
                  action_noise=lambda dim: DecayingNormalNoise(np.full(dim, ddpg.NOISE_SIGMA), ddpg.NOISE_DECAY)),
    ]
}  # fmt: skip


def list_agents() -> list[str]:
    """Names accepted by :func:`make_agent`."""
    return list(AGENTS)


def constrained_agents() -> list[str]:
    """Agents that take ``cost_limit`` and keep the episodic cost under it on any constrained env."""
    return [name for name, spec in AGENTS.items() if spec.constrained]


def known_hyperparameters(cls: type) -> set[str]:
    """Constructor arguments of ``cls`` and its bases (what a defaults file may set)."""
    keys: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                keys.add(p.name)
    return keys - {"self", "policy", "env", "_init_setup_model"}


def validate_hyperparameters(name: str, params: dict) -> None:
    spec = get_agent_spec(name)
    known = known_hyperparameters(spec.cls)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown} for agent {name!r}; known: {sorted(known)}")


def get_agent_spec(name: str) -> AgentSpec:
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(AGENTS)}")
    return AGENTS[name]


def wrap_for_agent(
    name: str, env: gym.Env, *, penalty_coef: float = 1.0, cost_limit: float | None = None
) -> gym.Env:
    """The wrappers the named agent trains through, around one ``gym.Env``: CostOverLimit (an
    env that draws its limit per episode), SensitivityFeatures
    (``ppo-lag-sensitive``), ClipToBudget (AMC) or ScaleToBudget (``ppo-lag-scaled``), action
    rescaling to [-1, 1] for Gaussian policies, CostPenalty for the penalty agents, Saute
    (budget ``cost_limit``, default the env's) for the Sauté agents. For several environments,
    wrap each one (in its own process) and give ``make_agent`` the VecEnv.
    """
    spec = get_agent_spec(name)
    space = env.action_space
    if spec.action_space is not None and not isinstance(space, spec.action_space):
        hint = "action_mode='ratio'" if spec.action_space is gym.spaces.Box else "action_mode='mask'"
        raise ValueError(
            f"agent {name!r} needs a {spec.action_space.__name__} action space: make the env with {hint}"
        )
    if getattr(env.unwrapped, "draws_limits", False):
        env = CostOverLimit(env)  # one cost limit (1) for every drawn limit
    if spec.sensitivity:
        env = SensitivityFeatures(env)
    if spec.clip_to_budget:
        env = ClipToBudget(env)
    elif spec.scale_to_budget:
        env = ScaleToBudget(env)
    if isinstance(space, gym.spaces.Box) and not (np.all(space.low == -1) and np.all(space.high == 1)):
        # Gaussian policies start at mean 0: rescaled, that is the middle of the range
        # (keep half the units) instead of a clipped edge (keep one unit).
        env = RescaleAction(
            env, np.full(space.shape, -1.0, np.float32), np.full(space.shape, 1.0, np.float32)
        )
    if spec.saute:
        env = Saute(env, budget=cost_limit)
    if spec.penalty:
        env = CostPenalty(env, penalty_coef)
        if name == "recurrent-ppo-penalty" and isinstance(space, gym.spaces.MultiBinary):
            env = MultiBinaryAsMultiDiscrete(env)  # its loss fails on MultiBinary's int8 actions
    return env


def make_agent(name: str, env, *, penalty_coef: float = 1.0, **overrides):
    """Build the named agent on ``env`` with its defaults updated by ``overrides``
    (``cost_limit=...`` for a constrained agent; default the env's ``budget_limit``).

    A ``gym.Env`` is wrapped by :func:`wrap_for_agent` (penalty agents: ``CostPenalty(env,
    penalty_coef)``); a ``VecEnv`` is used as it is: its environments must already be wrapped.
    Unknown hyperparameters are an error, not silently ignored.
    """
    spec = get_agent_spec(name)
    params = {**copy.deepcopy(spec.defaults), **overrides}
    cost_limit = params.get("cost_limit")
    if "cost_limit" in params and not spec.constrained:
        raise ValueError(
            f"agent {name!r} is not a constrained agent: cost_limit applies to {constrained_agents()}"
        )
    if spec.saute:
        params.pop("cost_limit", None)  # the wrapper's budget, not an algorithm argument
    validate_hyperparameters(name, params)
    if not isinstance(env, VecEnv):
        env = wrap_for_agent(name, env, penalty_coef=penalty_coef, cost_limit=cost_limit)
    space = env.unwrapped.action_space if isinstance(env, gym.Env) else env.action_space
    if spec.action_noise is not None and params.get("action_noise") is None:
        params["action_noise"] = spec.action_noise(int(np.prod(space.shape)))
    return spec.cls(spec.policy, env, **params)
