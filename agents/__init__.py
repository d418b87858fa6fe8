"""Constrained RL agents on stable-baselines3 for PruneEnv-v0 (and any env with info["cost"]).

Depends on the environment core's cost conventions only (``prune_env.cost_convention``,
``prune_env.wrappers``, ``prune_env.errors``), never on the application (``prune_env.app``).
"""

from agents.common.lagrange import GradientLagrange, Lagrange, PIDLagrange, make_lagrange
from agents.cpo import CPO
from agents.p3o import P3O
from agents.ppo_lag import CostActorCriticPolicy, PPOLag
from agents.registry import constrained_agents, list_agents, make_agent
from agents.sac_lag import SACLag
from prune_env.errors import MissingCostError

__all__ = [
    "CPO",
    "CostActorCriticPolicy",
    "GradientLagrange",
    "Lagrange",
    "MissingCostError",
    "P3O",
    "PIDLagrange",
    "PPOLag",
    "SACLag",
    "constrained_agents",
    "list_agents",
    "make_agent",
    "make_lagrange",
]
