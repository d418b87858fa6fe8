"""PPO-Lagrangian: PPO that keeps the expected episodic cost under a limit.

Follows the PPO-Lagrangian of Ray, Achiam and Amodei (2019) as the paper's authors and OmniSafe
use it: a reward critic and a separate cost critic, a Lagrange multiplier per constraint that is
updated once per rollout (before the policy update) from the mean episodic cost, and a policy
objective on the combined advantage ``(A_r - sum_i lambda_i * A_c,i) / (1 + sum_i lambda_i)``,
with the reward advantage normalized and the cost advantages only centred.

Costs are read from ``info["costs"]`` (a vector) or ``info[cost_key]`` (default ``"cost"``), the
Gymnasium convention for constrained environments; a step without either is an error.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.utils import explained_variance, obs_as_tensor
from torch.nn import functional as F

from agents.common.buffers import CostRolloutBuffer
from agents.common.lagrange import Lagrange, make_lagrange
from agents.common.limits import env_budget_limit
from agents.ppo_lag.policies import CostActorCriticPolicy
from prune_env.cost_convention import read_costs


class PPOLag(PPO):
    """PPO with Lagrangian constraints on episodic costs; used exactly like SB3's ``PPO``.

    Args:
        policy: ``"MlpPolicy"`` (an actor-critic with a cost critic) or a policy class.
        env: the environment; it must report costs in ``info``.
        cost_limit: limit on the expected undiscounted episodic cost; a list gives one
            multiplier per constraint (read from ``info["costs"]``). ``None`` takes
            ``env.unwrapped.budget_limit``.
        lagrangian: ``"gradient"`` (projected gradient ascent) or ``"pid"`` (PID Lagrangian).
        lagrange_kwargs: arguments of the multiplier (see ``agents.common.lagrange``), e.g.
            ``dict(initial_value=1.0, lr=0.05, optimizer="adam", upper_bound=10)``.
        cost_gamma: discount of costs.
        cost_gae_lambda: GAE lambda of costs.
        cost_vf_coef: weight of the cost critic's loss.
        cost_key: ``info`` key of a scalar cost. With one ``cost_limit`` and an env that reports
            several costs (``info["costs"]``), this key's cost is the one constrained (PruneEnv's
            ``"cost"``: the first budget).
        cost_window: the episodes whose mean cost updates the multiplier: ``None`` (default)
            this rollout's finished episodes (OmniSafe's mean episodic cost of an epoch), or
            the last ``cost_window`` finished episodes. A rollout in which no episode finished
            leaves the multiplier where it is.
        separate_cost_clip: clip the cost critic's gradient norm on its own. One Adam optimizer
            over all heads equals one optimizer per head (Adam's statistics are per parameter)
            except for the shared gradient-norm clip, where the cost critic's loss can use up the
            actor's share; this removes that coupling. Off by default: the committed results
            were produced with the shared clip.
        cost_net_arch: hidden sizes of the cost critic (default: the value network's).
        scale_cost_advantage: divide the centred cost advantage by the reward advantage's
            standard deviation too. Normalizing only the reward advantage (the paper's choice,
            the default) rescales the Lagrangian, so lambda must grow by 1 / std(A_r) before the
            cost counts; with this option the combined advantage is the normalized advantage of
            the Lagrangian itself and lambda stays in the units of reward per unit of cost.
        **kwargs: every other ``PPO`` argument.
    """

    policy_aliases = {"MlpPolicy": CostActorCriticPolicy}  # noqa: RUF012

    def __init__(
        self,
        policy: str | type[CostActorCriticPolicy],
        env,
        cost_limit: float | list[float] | None = None,
        lagrangian: str = "gradient",
        lagrange_kwargs: dict[str, Any] | None = None,
        cost_gamma: float = 0.99,
        cost_gae_lambda: float = 0.95,
        cost_vf_coef: float = 0.5,
        cost_key: str = "cost",
        cost_net_arch: list[int] | None = None,
        scale_cost_advantage: bool = False,
        cost_window: int | None = None,
        separate_cost_clip: bool = False,
        _init_setup_model: bool = True,
        **kwargs,
    ):
        super().__init__(policy, env, _init_setup_model=False, **kwargs)
        self.cost_limit = cost_limit
        self.lagrangian = lagrangian
        self.lagrange_kwargs = dict(lagrange_kwargs or {})
        self.cost_gamma, self.cost_gae_lambda = float(cost_gamma), float(cost_gae_lambda)
        self.cost_vf_coef = float(cost_vf_coef)
        self.cost_key = cost_key
        self.cost_net_arch = cost_net_arch
        self.scale_cost_advantage = bool(scale_cost_advantage)
        if cost_window is not None and int(cost_window) < 1:
            raise ValueError(f"cost_window must be None or >= 1, got {cost_window}")
        self.cost_window = None if cost_window is None else int(cost_window)
        self.separate_cost_clip = bool(separate_cost_clip)
        self.lagrange: Lagrange | None = None
        if _init_setup_model:
            self._setup_model()

    # --- set-up -----------------------------------------------------------------------------

    def _resolve_cost_limit(self) -> list[float]:
        limit = self.cost_limit
        if limit is None:
            limit = env_budget_limit(self.env)
        limits = [float(v) for v in (limit if isinstance(limit, (list, tuple, np.ndarray)) else [limit])]
        if not limits or not all(np.isfinite(limits)):
            raise ValueError(f"cost_limit must be finite numbers, got {limit!r}")
        return limits

    def _setup_model(self) -> None:
        limits = self._resolve_cost_limit()
        self.cost_limit = limits if len(limits) > 1 else limits[0]
        self.n_costs = len(limits)
        self.rollout_buffer_class = CostRolloutBuffer
        self.rollout_buffer_kwargs = {
            **self.rollout_buffer_kwargs,
            "n_costs": self.n_costs,
            "cost_gamma": self.cost_gamma,
            "cost_gae_lambda": self.cost_gae_lambda,
        }
        self.policy_kwargs = {**self.policy_kwargs, "n_costs": self.n_costs}
        if self.cost_net_arch is not None:
            self.policy_kwargs["cost_net_arch"] = self.cost_net_arch
        super()._setup_model()
        if not isinstance(self.policy, CostActorCriticPolicy):
            raise TypeError("PPOLag needs a policy with a cost critic (agents.ppo_lag.CostActorCriticPolicy)")
        if self.lagrange is None:  # a loaded model keeps its saved multiplier
            self.lagrange = make_lagrange(self.lagrangian, limits, **self.lagrange_kwargs)
        self.ep_cost_buffer: deque = deque(maxlen=max(self._stats_window_size, self.cost_window or 0))
        self.ep_length_buffer: deque = deque(maxlen=self.ep_cost_buffer.maxlen)
        self._rollout_episode_costs: list[np.ndarray] = []
        self._rollout_episode_lengths: list[int] = []
        self._running_costs = np.zeros((self.n_envs, self.n_costs))
        self._running_lengths = np.zeros(self.n_envs, dtype=np.int64)

    def _setup_learn(
        self, total_timesteps, callback=None, reset_num_timesteps=True, tb_log_name="run", progress_bar=False
    ):
        if reset_num_timesteps or self._last_obs is None:
            self._running_costs = np.zeros((self.n_envs, self.n_costs))  # the env is reset
            self._running_lengths = np.zeros(self.n_envs, dtype=np.int64)
        if reset_num_timesteps:
            self.ep_cost_buffer.clear()
            self.ep_length_buffer.clear()
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)

    @property
    def lagrange_multiplier(self) -> float | np.ndarray:
        """The current multiplier (an array with several constraints)."""
        return self.lagrange.value

    # --- rollouts ---------------------------------------------------------------------------

    def _read_costs(self, infos: list[dict]) -> np.ndarray:
        costs = np.zeros((len(infos), self.n_costs), dtype=np.float64)
        for i, info in enumerate(infos):
            value = read_costs(info, self.cost_key)
            if self.n_costs == 1 and value.size > 1:  # one limit: constrain cost_key's cost
                value = np.asarray([info[self.cost_key]]) if self.cost_key in info else value[:1]
            if value.size != self.n_costs:
                raise ValueError(
                    f"the env reports {value.size} cost(s) but PPOLag has {self.n_costs} cost limit(s); "
                    "give one cost_limit per cost"
                )
            costs[i] = value
        return costs

    def collect_rollouts(
        self, env, callback, rollout_buffer: CostRolloutBuffer, n_rollout_steps: int
    ) -> bool:
        """SB3's on-policy rollout loop, with costs read, tracked per episode and stored."""
        assert self._last_obs is not None, "No previous observation was provided"
        self.policy.set_training_mode(False)
        n_steps = 0
        rollout_buffer.reset()
        self._rollout_episode_costs, self._rollout_episode_lengths = [], []
        if self.use_sde:
            self.policy.reset_noise(env.num_envs)
        callback.on_rollout_start()

        while n_steps < n_rollout_steps:
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(env.num_envs)
            with th.no_grad():
                obs_tensor = obs_as_tensor(self._last_obs, self.device)
                actions, values, log_probs = self.policy(obs_tensor)
                cost_values = self.policy.predict_cost_values(obs_tensor)
            actions = actions.cpu().numpy()
            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                if self.policy.squash_output:
                    clipped_actions = self.policy.unscale_action(clipped_actions)
                else:
                    clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)

            new_obs, rewards, dones, infos = env.step(clipped_actions)
            costs = self._read_costs(infos)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            n_steps += 1
            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)

            self._running_costs += costs
            self._running_lengths += 1
            for idx, done in enumerate(dones):
                if not done:
                    continue
                self._rollout_episode_costs.append(self._running_costs[idx].copy())
                self._rollout_episode_lengths.append(int(self._running_lengths[idx]))
                self.ep_cost_buffer.append(self._running_costs[idx].copy())
                self.ep_length_buffer.append(int(self._running_lengths[idx]))
                self._running_costs[idx], self._running_lengths[idx] = 0.0, 0
                if infos[idx].get("terminal_observation") is not None and infos[idx].get(
                    "TimeLimit.truncated", False
                ):
                    terminal_obs = self.policy.obs_to_tensor(infos[idx]["terminal_observation"])[0]
                    with th.no_grad():
                        rewards[idx] += self.gamma * self.policy.predict_values(terminal_obs)[0].item()
                        terminal_cost = self.policy.predict_cost_values(terminal_obs)[0].cpu().numpy()
                    costs[idx] += self.cost_gamma * terminal_cost

            rollout_buffer.add(
                self._last_obs, actions, rewards, self._last_episode_starts, values, log_probs,
                cost=costs, cost_value=cost_values,
            )  # fmt: skip
            self._last_obs = new_obs
            self._last_episode_starts = dones

        with th.no_grad():
            obs_tensor = obs_as_tensor(new_obs, self.device)
            values = self.policy.predict_values(obs_tensor)
            cost_values = self.policy.predict_cost_values(obs_tensor)
        rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
        rollout_buffer.compute_cost_returns_and_advantage(last_cost_values=cost_values, dones=dones)
        if self.ep_cost_buffer:
            mean = np.mean(np.stack(self.ep_cost_buffer), axis=0)
            self.logger.record("rollout/ep_cost_mean", float(mean[0]))
            for i in range(1, self.n_costs):
                self.logger.record(f"rollout/ep_cost_{i}_mean", float(mean[i]))
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    # --- update -----------------------------------------------------------------------------

    def _clip_gradients(self) -> None:
        if not self.separate_cost_clip:
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            return
        cost = list(self.policy.cost_value_net.parameters())
        ids = {id(p) for p in cost}
        th.nn.utils.clip_grad_norm_(
            [p for p in self.policy.parameters() if id(p) not in ids], self.max_grad_norm
        )
        th.nn.utils.clip_grad_norm_(cost, self.max_grad_norm)

    def _window_mean_cost(self) -> np.ndarray | None:
        """The mean episodic cost of the episodes of ``cost_window``; ``None`` when no episode
        finished in this rollout (an update then would count the same violation twice)."""
        if not self._rollout_episode_costs:
            return None
        episodes = self._rollout_episode_costs
        if self.cost_window is not None:
            episodes = list(self.ep_cost_buffer)[-self.cost_window :]
        return np.mean(np.stack(episodes), axis=0)

    def _window_mean_length(self) -> float | None:
        """The mean length of the episodes :meth:`_window_mean_cost` averages (``None`` likewise):
        what turns a per-step cost surrogate into the episodic cost the limit is on."""
        if not self._rollout_episode_lengths:
            return None
        lengths = self._rollout_episode_lengths
        if self.cost_window is not None:
            lengths = list(self.ep_length_buffer)[-self.cost_window :]
        return float(np.mean(lengths))

    def _update_multiplier(self) -> None:
        """Once per rollout, before the policy update, from :meth:`_window_mean_cost`."""
        mean_cost = self._window_mean_cost()
        if mean_cost is not None:
            self.lagrange.update(mean_cost)

    def _advantages(self, rollout_data) -> tuple[th.Tensor, th.Tensor]:
        """The minibatch's reward advantage (normalized) and cost advantages (centred; also
        divided by the reward advantage's std with ``scale_cost_advantage``)."""
        advantages = rollout_data.advantages
        cost_advantages = rollout_data.cost_advantages
        if self.normalize_advantage and len(advantages) > 1:
            reward_std = advantages.std() + 1e-8
            advantages = (advantages - advantages.mean()) / reward_std
            cost_advantages = cost_advantages - cost_advantages.mean(0, keepdim=True)
            if self.scale_cost_advantage:
                cost_advantages = cost_advantages / reward_std
        return advantages, cost_advantages

    def _policy_loss(
        self, rollout_data, ratio: th.Tensor, clip_range: float, multipliers: th.Tensor
    ) -> th.Tensor:
        """PPO's clipped surrogate on the combined advantage ``(A_r - sum lambda A_c) / (1 + sum lambda)``."""
        advantages, cost_advantages = self._advantages(rollout_data)
        advantages = (advantages - (cost_advantages * multipliers).sum(-1)) / (1.0 + multipliers.sum())
        policy_loss_1 = advantages * ratio
        policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
        return -th.min(policy_loss_1, policy_loss_2).mean()

    def train(self) -> None:
        """PPO's update on the combined advantage, plus the cost critic's regression."""
        self._update_multiplier()
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)
        clip_range_vf = (
            None if self.clip_range_vf is None else self.clip_range_vf(self._current_progress_remaining)
        )
        multipliers = th.as_tensor(self.lagrange.values, dtype=th.float32, device=self.device)

        entropy_losses, pg_losses, value_losses, cost_value_losses, clip_fractions = [], [], [], [], []
        approx_kl_divs: list[float] = []
        continue_training = True
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    actions = rollout_data.actions.long().flatten()
                values, log_prob, entropy = self.policy.evaluate_actions(rollout_data.observations, actions)
                values = values.flatten()

                ratio = th.exp(log_prob - rollout_data.old_log_prob)
                policy_loss = self._policy_loss(rollout_data, ratio, clip_range, multipliers)
                pg_losses.append(policy_loss.item())
                clip_fractions.append(th.mean((th.abs(ratio - 1) > clip_range).float()).item())

                cost_values = self.policy.predict_cost_values(rollout_data.observations)
                if clip_range_vf is None:
                    values_pred, cost_values_pred = values, cost_values
                else:
                    values_pred = rollout_data.old_values + th.clamp(
                        values - rollout_data.old_values, -clip_range_vf, clip_range_vf
                    )
                    cost_values_pred = rollout_data.old_cost_values + th.clamp(
                        cost_values - rollout_data.old_cost_values, -clip_range_vf, clip_range_vf
                    )
                value_loss = F.mse_loss(rollout_data.returns, values_pred)
                cost_value_loss = F.mse_loss(rollout_data.cost_returns, cost_values_pred)
                value_losses.append(value_loss.item())
                cost_value_losses.append(cost_value_loss.item())

                entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
                entropy_losses.append(entropy_loss.item())

                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
                loss = loss + self.cost_vf_coef * cost_value_loss

                with th.no_grad():
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()
                    approx_kl_divs.append(approx_kl_div)
                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div:.2f}")
                    break

                self.policy.optimizer.zero_grad()
                loss.backward()
                self._clip_gradients()
                self.policy.optimizer.step()
            self._n_updates += 1
            if not continue_training:
                break

        explained_var = explained_variance(
            self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()
        )
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/cost_value_loss", np.mean(cost_value_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        values = self.lagrange.values
        self.logger.record("train/lagrange_multiplier", float(values[0]))
        for i in range(1, self.n_costs):
            self.logger.record(f"train/lagrange_multiplier_{i}", float(values[i]))
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)
