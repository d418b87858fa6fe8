"""P3O: Penalized Proximal Policy Optimization (Zhang et al., IJCAI 2022).

The constrained problem becomes one unconstrained loss with an exact (ReLU) penalty:

    L = L_clip^R + kappa * sum_i ReLU( L_clip^C_i + (J_C_i - d_i) )

where ``L_clip^R`` is PPO's clipped reward surrogate (to minimise, so negated), ``L_clip^C_i`` the
pessimistic clipped surrogate of cost ``i``'s advantage (the max of clipped and unclipped, as
costs are minimised), ``J_C_i`` the mean episodic cost of the recent episodes and ``d_i`` its
limit. For ``kappa`` above a finite threshold the penalised problem has the constrained
problem's solution; no multiplier is learned. As in OmniSafe's P3O, the ``(1 - gamma)`` factor
of the paper's violation term is dropped, since the limit is on the undiscounted episodic cost.
Everything else (cost critic, cost GAE, rollouts, costs from ``info``) is PPOLag's.
"""

from __future__ import annotations

import numpy as np
import torch as th
from torch.nn import functional as F

from agents.ppo_lag import PPOLag


class P3O(PPOLag):
    """PPO with P3O's exact penalty on the episodic cost; used like SB3's ``PPO``.

    Args:
        kappa: the penalty's weight (OmniSafe's default is 20).
        **kwargs: PPOLag's arguments (``cost_limit``, ``cost_gamma``, ``cost_gae_lambda``,
            ``cost_window``: the episodes whose mean cost is ``J_C``, ...); its multiplier
            arguments are unused.
    """

    def __init__(self, policy, env, kappa: float = 20.0, **kwargs):
        if kappa < 0:
            raise ValueError(f"kappa must be >= 0, got {kappa}")
        self.kappa = float(kappa)
        self._violation = None
        super().__init__(policy, env, **kwargs)

    def _update_multiplier(self) -> None:
        """No multiplier: the violation ``J_C - d`` of the window's episodes (kept from the last
        rollout that finished an episode)."""
        mean_cost = self._window_mean_cost()
        if mean_cost is None:
            return
        self._violation = mean_cost - np.atleast_1d(np.asarray(self.cost_limit, dtype=np.float64))
        self.logger.record("train/p3o_violation", float(self._violation[0]))

    def _policy_loss(
        self, rollout_data, ratio: th.Tensor, clip_range: float, multipliers: th.Tensor
    ) -> th.Tensor:
        advantages, cost_advantages = self._advantages(rollout_data)
        reward_loss = -th.min(
            advantages * ratio, advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
        ).mean()
        if self._violation is None:  # no finished episode yet: nothing to constrain
            return reward_loss
        clipped = th.clamp(ratio, 1 - clip_range, 1 + clip_range).unsqueeze(-1)
        cost_surrogate = th.max(cost_advantages * ratio.unsqueeze(-1), cost_advantages * clipped).mean(0)
        violation = th.as_tensor(self._violation, dtype=cost_surrogate.dtype, device=cost_surrogate.device)
        return reward_loss + self.kappa * F.relu(cost_surrogate + violation).sum()
