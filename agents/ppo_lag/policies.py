"""Actor-critic policies with a separate, trained cost critic.

SB3's ``ActorCriticPolicy._build`` creates the optimizer as its last line, so a head added
after it would never be trained: :meth:`CostActorCriticPolicy._build` adds the cost critic and
then rebuilds the optimizer over all parameters. The cost critic is initialised from a forked
random stream, so adding it does not change the actor's or the reward critic's initial weights
(or anything drawn later) relative to plain PPO under the same seed.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from torch import nn


class CostActorCriticPolicy(ActorCriticPolicy):
    """``ActorCriticPolicy`` plus a cost critic: an MLP from the value features to ``n_costs``.

    Args:
        n_costs: number of constraints (outputs of the cost critic).
        cost_net_arch: hidden sizes of the cost critic (default: the value network's).
        *args, **kwargs: as ``ActorCriticPolicy``.
    """

    def __init__(self, *args, n_costs: int = 1, cost_net_arch: list[int] | None = None, **kwargs):
        self.n_costs = int(n_costs)
        self.cost_net_arch = cost_net_arch
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        if self.cost_net_arch is not None:
            hidden = list(self.cost_net_arch)
        elif isinstance(self.net_arch, dict):
            hidden = list(self.net_arch.get("vf", []))
        else:
            hidden = list(self.net_arch)
        with th.random.fork_rng(devices=[]):
            th.manual_seed((th.initial_seed() + 1) % 2**63)
            layers: list[nn.Module] = []
            size = self.features_dim
            for width in hidden:
                layers += [nn.Linear(size, width), self.activation_fn()]
                size = width
            body = nn.Sequential(*layers)
            head = nn.Linear(size, self.n_costs)
            if self.ortho_init:
                body.apply(partial(self.init_weights, gain=np.sqrt(2)))
                head.apply(partial(self.init_weights, gain=1.0))
            self.cost_value_net = nn.Sequential(body, head)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def predict_cost_values(self, obs: th.Tensor) -> th.Tensor:
        """Estimated discounted cost-to-go, shape (batch, n_costs)."""
        features = BasePolicy.extract_features(self, obs, self.vf_features_extractor)
        return self.cost_value_net(features)

    def _get_constructor_parameters(self) -> dict:
        data = super()._get_constructor_parameters()
        data.update(n_costs=self.n_costs, cost_net_arch=self.cost_net_arch)
        return data


MlpPolicy = CostActorCriticPolicy
