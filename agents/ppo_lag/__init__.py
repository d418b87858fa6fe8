from agents.ppo_lag.policies import CostActorCriticPolicy
from agents.ppo_lag.ppo_lag import PPOLag

__all__ = ["CostActorCriticPolicy", "PPOLag"]
