"""P3O: Penalized Proximal Policy Optimization (Zhang et al., IJCAI 2022).

The constrained problem becomes one unconstrained loss with an exact (ReLU) penalty:

    L = L_clip^R + kappa * sum_i ReLU( L_clip^C_i + (J_C_i - d_i) )

where ``L_clip^R`` is PPO's clipped reward surrogate (to minimise, so negated), ``L_clip^C_i`` the
pessimistic clipped surrogate of cost ``i``'s advantage (the max of clipped and unclipped, as
costs are minimised), ``J_C_i`` the mean episodic cost of the recent episodes and ``d_i`` its
limit. For ``kappa`` above a finite threshold the penalised problem has the constrained
problem's solution; no multiplier is learned. As in OmniSafe's P3O, the ``(1 - gamma)`` factor
of the paper's violation term is dropped, since the limit is on the undiscounted episodic cost.

Units (the same convention as this project's CPO): ``J_C - d`` is episodic, while the surrogate
is a mean over steps, so the surrogate is multiplied by ``L``, the mean length of the episodes
whose costs give ``J_C``: both terms of the hinge are then changes of the episodic cost. Without
it the hinge is off by about ``L`` wherever the cost arrives once per episode (PruneEnv: at its
last step), and the penalty reacts to the violation alone. OmniSafe adds the per-step mean as it
is, which is the same only for costs spread evenly over the steps.
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
        self._episode_length = 1.0
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.scale_cost_advantage:
            raise ValueError(
                "P3O adds its cost surrogate to the episodic violation J_C - d, so the cost advantage "
                "must keep cost units: scale_cost_advantage=True divides it by the reward advantage's std"
            )

    def _update_multiplier(self) -> None:
        """No multiplier: the violation ``J_C - d`` of the window's episodes (kept from the last
        rollout that finished an episode)."""
        mean_cost = self._window_mean_cost()
        if mean_cost is None:
            return
        self._violation = mean_cost - np.atleast_1d(np.asarray(self.cost_limit, dtype=np.float64))
        self._episode_length = self._window_mean_length()
        self.logger.record("train/p3o_violation", float(self._violation[0]))
        self.logger.record("train/p3o_episode_length", self._episode_length)

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
        per_step = th.max(cost_advantages * ratio.unsqueeze(-1), cost_advantages * clipped).mean(0)
        cost_surrogate = self._episode_length * per_step  # the episodic scale of the violation
        violation = th.as_tensor(self._violation, dtype=cost_surrogate.dtype, device=cost_surrogate.device)
        return reward_loss + self.kappa * F.relu(cost_surrogate + violation).sum()
