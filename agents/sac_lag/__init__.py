from agents.sac_lag.sac_lag import CostReplayBuffer, SACLag

__all__ = ["CostReplayBuffer", "SACLag"]
