"""Constrained RL agents on stable-baselines3 for PruneEnv-v0 (and any env with info["cost"])."""

from agents.common.lagrange import GradientLagrange, Lagrange, PIDLagrange, make_lagrange
from agents.ppo_lag import CostActorCriticPolicy, MissingCostError, PPOLag
from agents.registry import list_agents, make_agent

__all__ = [
    "CostActorCriticPolicy",
    "GradientLagrange",
    "Lagrange",
    "MissingCostError",
    "PIDLagrange",
    "PPOLag",
    "list_agents",
    "make_agent",
    "make_lagrange",
]
