"""SAC-Lagrangian: off-policy SAC with a cost critic and a Lagrange multiplier (Ha et al., CoRL
2020, "Learning to walk in the real world with minimal human effort"; OmniSafe's SACLag).

The reward critics, the actor and the entropy temperature are SAC's. A cost critic (two heads,
averaged) learns the discounted cost-to-go from the costs stored with every transition, and the
actor minimises ``alpha * log pi - Q_r + lambda * Q_c``, divided by ``1 + lambda`` so the step
size does not grow with the multiplier. The multiplier is updated before each training phase
from the mean cost of the episodes that finished since the last update (never from none), by
the same :mod:`agents.common.lagrange` rules as PPOLag. One environment (the replay buffer
stores one cost per transition); for PruneEnv, ratio mode.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.utils import polyak_update
from torch.nn import functional as F

from agents.common.lagrange import Lagrange, make_lagrange
from agents.common.limits import env_budget_limit
from prune_env.cost_convention import read_costs


class CostReplayBufferSamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` fields, then ``costs``."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    costs: th.Tensor


class CostReplayBuffer(ReplayBuffer):
    """SB3's replay buffer plus each transition's cost (``info["cost"]``), one environment."""

    def __init__(self, *args, cost_key: str = "cost", **kwargs):
        super().__init__(*args, **kwargs)
        if self.n_envs != 1:
            raise ValueError("CostReplayBuffer (SAC-Lag) supports one environment")
        self.cost_key = cost_key
        self.costs = np.zeros((self.buffer_size, 1), dtype=np.float32)

    def add(self, obs, next_obs, action, reward, done, infos: list[dict[str, Any]]) -> None:
        self.costs[self.pos, 0] = float(read_costs(infos[0], self.cost_key)[0])
        super().add(obs, next_obs, action, reward, done, infos)

    def _get_samples(self, batch_inds: np.ndarray, env=None) -> CostReplayBufferSamples:
        base = super()._get_samples(batch_inds, env)  # with one env, row i of the sample is batch_inds[i]
        return CostReplayBufferSamples(**base._asdict(), costs=self.to_torch(self.costs[batch_inds]))


class SACLag(SAC):
    """SAC with a Lagrangian constraint on the episodic cost; used like SB3's ``SAC``.

    Args:
        cost_limit: limit on the expected episodic cost; ``None`` takes the env's ``budget_limit``.
        lagrange_kwargs: the multiplier's arguments (``agents.common.lagrange.GradientLagrange``).
        cost_gamma: discount of the cost critic's target.
        cost_key: ``info`` key of the cost.
        **kwargs: every other ``SAC`` argument.
    """

    def __init__(
        self,
        policy,
        env,
        cost_limit: float | None = None,
        lagrange_kwargs: dict[str, Any] | None = None,
        cost_gamma: float = 0.99,
        cost_key: str = "cost",
        _init_setup_model: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("replay_buffer_kwargs", {})
        kwargs["replay_buffer_kwargs"] = {**kwargs["replay_buffer_kwargs"], "cost_key": cost_key}
        super().__init__(policy, env, replay_buffer_class=CostReplayBuffer, _init_setup_model=False, **kwargs)
        self.cost_limit, self.cost_gamma, self.cost_key = cost_limit, float(cost_gamma), cost_key
        self.lagrange_kwargs = dict(lagrange_kwargs or {})
        self.lagrange: Lagrange | None = None
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        if self.cost_limit is None:
            limit = env_budget_limit(self.env)
            self.cost_limit = float(limit[0] if isinstance(limit, (list, tuple)) else limit)
        super()._setup_model()
        self.cost_critic = self.policy.make_critic(features_extractor=None).to(self.device)
        self.cost_critic_target = self.policy.make_critic(features_extractor=None).to(self.device)
        self.cost_critic_target.load_state_dict(self.cost_critic.state_dict())
        self.cost_critic_target.set_training_mode(False)
        self.cost_critic.optimizer = self.policy.optimizer_class(
            self.cost_critic.parameters(), lr=self.lr_schedule(1), **self.policy.optimizer_kwargs
        )
        if self.lagrange is None:
            self.lagrange = make_lagrange("gradient", [float(self.cost_limit)], **self.lagrange_kwargs)
        self.ep_cost_buffer: deque = deque(maxlen=self._stats_window_size)
        self._finished_costs: list[float] = []
        self._running_cost = 0.0

    @property
    def lagrange_multiplier(self) -> float:
        return self.lagrange.value

    def _store_transition(self, replay_buffer, buffer_action, new_obs, reward, dones, infos) -> None:
        self._running_cost += float(read_costs(infos[0], self.cost_key)[0])
        if dones[0]:
            self._finished_costs.append(self._running_cost)
            self.ep_cost_buffer.append(self._running_cost)
            self._running_cost = 0.0
            self.logger.record("rollout/ep_cost_mean", float(np.mean(self.ep_cost_buffer)))
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self._finished_costs:  # the multiplier first, from the episodes since the last update
            self.lagrange.update(np.mean(self._finished_costs))
            self._finished_costs = []
        lam = float(self.lagrange.value)
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer, self.cost_critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        logs: dict[str, list[float]] = {
            k: [] for k in ("actor_loss", "critic_loss", "cost_critic_loss", "ent_coef")
        }

        for step in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            actions_pi, log_prob = self.actor.action_log_prob(batch.observations)
            log_prob = log_prob.reshape(-1, 1)
            if self.ent_coef_optimizer is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                ent_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                self.ent_coef_optimizer.zero_grad()
                ent_loss.backward()
                self.ent_coef_optimizer.step()
            else:
                ent_coef = self.ent_coef_tensor
            logs["ent_coef"].append(float(ent_coef))

            with th.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(batch.next_observations)
                next_q = th.cat(self.critic_target(batch.next_observations, next_actions), dim=1)
                next_q = th.min(next_q, dim=1, keepdim=True)[0] - ent_coef * next_log_prob.reshape(-1, 1)
                target_q = batch.rewards + (1 - batch.dones) * self.gamma * next_q
                next_qc = th.cat(self.cost_critic_target(batch.next_observations, next_actions), dim=1).mean(
                    1, True
                )
                target_qc = batch.costs + (1 - batch.dones) * self.cost_gamma * next_qc

            critic_loss = sum(F.mse_loss(q, target_q) for q in self.critic(batch.observations, batch.actions))
            cost_critic_loss = sum(
                F.mse_loss(q, target_qc) for q in self.cost_critic(batch.observations, batch.actions)
            )
            for loss, critic in ((critic_loss, self.critic), (cost_critic_loss, self.cost_critic)):
                critic.optimizer.zero_grad()
                loss.backward()
                critic.optimizer.step()
            logs["critic_loss"].append(critic_loss.item())
            logs["cost_critic_loss"].append(cost_critic_loss.item())

            q_pi = th.min(th.cat(self.critic(batch.observations, actions_pi), dim=1), dim=1, keepdim=True)[0]
            qc_pi = th.cat(self.cost_critic(batch.observations, actions_pi), dim=1).mean(1, True)
            actor_loss = ((ent_coef * log_prob - q_pi + lam * qc_pi).mean()) / (1.0 + lam)
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            logs["actor_loss"].append(actor_loss.item())

            if step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.cost_critic.parameters(), self.cost_critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logs.items():
            self.logger.record(f"train/{key}", float(np.mean(values)))
        self.logger.record("train/lagrange_multiplier", lam)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "cost_critic", "cost_critic_target"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state, variables = super()._get_torch_save_params()
        return [*state, "cost_critic", "cost_critic_target", "cost_critic.optimizer"], variables
