"""CPO: Constrained Policy Optimization (Achiam, Held, Tamar and Abbeel, ICML 2017).

Each update solves, in the trust region ``KL(pi_old || pi) <= delta``, the linearised problem

    max_d  g . d   subject to   c + b . d <= 0,   0.5 d^T H d <= delta

where ``g`` and ``b`` are the gradients of the reward and cost surrogates, ``H`` the Fisher
matrix (Hessian of the KL, used through conjugate gradients) and ``c = J_C - d_limit`` the
current violation. The dual has a closed form (the paper's appendix 10.2, :func:`cpo_direction`):
a plain TRPO step when the constraint cannot bind, the optimal mix of ``H^-1 g`` and ``H^-1 b``
when it can, and, when no point of the trust region is feasible, a pure recovery step down the
cost gradient. The paper writes the dual for ``g`` the gradient of a loss; here ``g`` is the
gradient of the reward, to be maximised, so ``r = g . H^-1 b`` enters with the opposite sign
(``nu = (lambda c + r)+ / s``; tested against an independent solver). A backtracking line search
then accepts the first step that keeps the KL within ``delta``, does not raise the cost
surrogate by more than the slack ``max(-c, 0)``, and, where the current policy is feasible
(cases 2-4), raises the reward surrogate; a recovery step (cases 0 and 1) may give up reward, as
in Safety-Starter-Agents and OmniSafe. Parallel reward and cost gradients (the dual's optimum at
``lambda = 0``, where the textbook form divides by it) give the step to the constraint's
boundary. A step that is not finite, or none at all, is rejected and logged
(``train/step_rejected``); a step that makes the policy's distribution invalid fails the line
search like any other (``train/line_search_accepted`` 0); either way training goes on. The critics (reward and
cost) are regressed afterwards with Adam, the actor's gradients removed, as in sb3-contrib's TRPO.

Units: the cost surrogate is a per-step mean, so it is multiplied by the mean length of the
finished episodes whose costs give ``c`` to compare with ``c``, an episodic cost (PruneEnv's
budgets are per episode); P3O uses the same convention.
Everything else (cost critic, cost GAE, rollouts, costs from ``info``) is PPOLag's.
"""

from __future__ import annotations

import copy

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.common.utils import conjugate_gradient_solver
from stable_baselines3.common.distributions import kl_divergence
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from agents.ppo_lag import PPOLag

EPS = 1e-8


def _pieces(c: float, r: float) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """The ranges of lambda >= 0 where ``nu = (lambda c + r) / s`` is positive (piece a, the
    constraint binds) and where it is clipped to 0 (piece b); ``None`` for an empty one."""
    if c > 0:
        return (max(-r / c, 0.0), np.inf), ((0.0, -r / c) if r < 0 else None)
    if c < 0:
        return ((0.0, -r / c) if r > 0 else None), (max(-r / c, 0.0), np.inf)
    return ((0.0, np.inf), None) if r > 0 else (None, (0.0, np.inf))


def cpo_direction(g, b, x, y, c: float, delta: float):
    """The step maximising ``g . d`` subject to ``c + b . d <= 0`` and ``0.5 d^T H d <= delta``
    (or, when no point of the trust region is feasible, minimising ``b . d`` in it), from
    ``x = H^-1 g`` and ``y = H^-1 b``; and its case (OmniSafe's numbering: 0 infeasible recovery,
    1 infeasible now but recoverable, 2 feasible with the constraint possibly binding, 3 the whole
    trust region feasible, 4 no cost gradient). The step is ``None`` when there is none to take
    (no reward gradient, or no cost gradient while over the limit).

    The dual ``-(q - 2 nu r + nu^2 s) / (2 lambda) + nu c - lambda delta`` (``q = g.x``,
    ``r = g.y``, ``s = b.y``) is maximised in closed form: ``nu = (lambda c + r)+ / s``; on each
    piece of lambda (:func:`_pieces`) the best lambda is projected onto the piece, and the better
    piece wins. Where the constraint binds the step is written as
    ``(x - (r/s) y) / lambda - (c/s) y``, which stays finite when the reward and cost gradients
    are parallel (then ``x - (r/s) y = 0`` and lambda -> 0): the step goes to the boundary.
    """
    q, r, s = float(g @ x), float(g @ y), float(b @ y)
    trpo = x * np.sqrt(2 * delta / (q + EPS))
    if s <= EPS:  # no cost gradient: the constraint cannot move
        return (trpo, 4) if c < 0 else (None, 0)
    A, B = max(q - r**2 / s, 0.0), 2 * delta - c**2 / s  # A = 0: g parallel to b (in H's metric)
    if c < 0 and B < 0:
        return trpo, 3  # the whole trust region is feasible
    if B < 0:
        return -np.sqrt(2 * delta / s) * y, 0  # no feasible point: recover as fast as possible
    case = 1 if c >= 0 else 2
    piece_a, piece_b = _pieces(c, r)
    f_a = f_b = -np.inf
    if piece_a is not None:
        lam_a = float(np.clip(np.sqrt(A / B) if B > 0 else np.inf, *piece_a))
        over_lambda = A / lam_a if lam_a > 0 else (0.0 if A == 0 else np.inf)
        times_lambda = B * lam_a if np.isfinite(lam_a) else (0.0 if B == 0 else np.inf)
        f_a = -0.5 * (over_lambda + times_lambda) + r * c / s
    if piece_b is not None:
        lam_b = float(np.clip(np.sqrt(q / (2 * delta)), *piece_b))
        if lam_b > 0:
            f_b = -0.5 * (q / lam_b + 2 * delta * lam_b)
    if piece_a is not None and f_a >= f_b:  # nu > 0: the step ends on the constraint's boundary
        step = -(c / s) * y
        if A > 0 and 0 < lam_a < np.inf:
            step = step + (x - (r / s) * y) / lam_a
        return step, case
    if f_b == -np.inf:
        return None, case  # no reward gradient to follow
    return x / lam_b, case


class CPO(PPOLag):
    """Constrained Policy Optimization; used like SB3's ``PPO`` (one constraint).

    Args:
        target_kl: the trust region's size ``delta`` (mean KL per update).
        cg_max_steps: conjugate-gradient iterations per solve.
        cg_damping: added to the Fisher-vector products (numerical stability).
        line_search_shrinking_factor: step shrink per backtracking iteration.
        line_search_max_iter: backtracking iterations before the update is dropped.
        **kwargs: PPOLag's arguments; ``n_epochs`` and ``batch_size`` drive the critics'
            regression, the multiplier arguments are unused.
    """

    def __init__(
        self,
        policy,
        env,
        target_kl: float = 0.01,
        cg_max_steps: int = 15,
        cg_damping: float = 0.1,
        line_search_shrinking_factor: float = 0.8,
        line_search_max_iter: int = 15,
        **kwargs,
    ):
        self.cg_max_steps, self.cg_damping = int(cg_max_steps), float(cg_damping)
        self.line_search_shrinking_factor = float(line_search_shrinking_factor)
        self.line_search_max_iter = int(line_search_max_iter)
        self._violation: float | None = None
        self._episode_length = 1.0
        super().__init__(policy, env, target_kl=target_kl, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.n_costs != 1:
            raise ValueError("CPO handles one constraint: give one cost_limit")

    def _update_multiplier(self) -> None:
        """No multiplier: the violation ``c = J_C - d`` of the window's episodes (kept from the
        last rollout that finished an episode)."""
        mean_cost = self._window_mean_cost()
        if mean_cost is not None:
            self._violation = float(mean_cost[0] - float(self.cost_limit))
            self._episode_length = self._window_mean_length()

    def _flat_grad(self, value: th.Tensor, params: list[th.Tensor], **kwargs) -> th.Tensor:
        grads = th.autograd.grad(value, params, **kwargs)
        return th.cat([g.reshape(-1) for g in grads])

    def train(self) -> None:
        self._update_multiplier()
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        data = next(self.rollout_buffer.get(batch_size=None))
        actions = (
            data.actions.long().flatten() if isinstance(self.action_space, spaces.Discrete) else data.actions
        )
        advantages = data.advantages
        if self.normalize_advantage and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + EPS)
        cost_advantages = data.cost_advantages[:, 0] - data.cost_advantages[:, 0].mean()
        episode_length = self._episode_length

        with th.no_grad():
            old_distribution = copy.copy(self.policy.get_distribution(data.observations))
        distribution = self.policy.get_distribution(data.observations)
        ratio = th.exp(distribution.log_prob(actions) - data.old_log_prob)
        reward_surrogate = (ratio * advantages).mean()
        cost_surrogate = episode_length * (ratio * cost_advantages).mean()
        kl = kl_divergence(distribution, old_distribution).mean()

        params = [p for p in self.policy.parameters() if p.requires_grad]
        grads = th.autograd.grad(reward_surrogate, params, retain_graph=True, allow_unused=True)
        actor = [p for p, grad in zip(params, grads) if grad is not None]
        g = self._flat_grad(reward_surrogate, actor, retain_graph=True)
        b = self._flat_grad(cost_surrogate, actor, retain_graph=True)
        grad_kl = self._flat_grad(kl, actor, create_graph=True)

        def fisher_product(vector: th.Tensor, retain_graph: bool = True) -> th.Tensor:
            return (
                self._flat_grad(grad_kl @ vector, actor, retain_graph=retain_graph) + self.cg_damping * vector
            )

        x = conjugate_gradient_solver(fisher_product, g, max_iter=self.cg_max_steps)
        y = conjugate_gradient_solver(fisher_product, b, max_iter=self.cg_max_steps)
        c = self._violation if self._violation is not None else -np.inf
        if not np.isfinite(c):  # no finished episode yet: nothing known about the cost
            direction, case = x * np.sqrt(2 * self.target_kl / (float(g @ x) + EPS)), 4
        else:
            direction, case = cpo_direction(g.detach(), b.detach(), x, y, c, self.target_kl)
        rejected = direction is None or not bool(th.isfinite(direction).all())

        originals = [p.detach().clone() for p in actor]
        accepted, step = False, 1.0
        old_reward, old_cost = reward_surrogate.item(), cost_surrogate.item()
        slack = max(-c, 0.0) if np.isfinite(c) else np.inf
        with th.no_grad():
            for _ in range(0 if rejected else self.line_search_max_iter):
                self._set_actor(actor, originals, step * direction)
                try:
                    new_distribution = self.policy.get_distribution(data.observations)
                except ValueError:  # the step made the distribution invalid (torch's validation)
                    step *= self.line_search_shrinking_factor
                    continue
                new_ratio = th.exp(new_distribution.log_prob(actions) - data.old_log_prob)
                new_reward = (new_ratio * advantages).mean().item()
                new_cost = episode_length * (new_ratio * cost_advantages).mean().item()
                new_kl = kl_divergence(new_distribution, old_distribution).mean().item()
                if (
                    np.isfinite(new_reward)
                    and new_kl <= self.target_kl
                    and (case <= 1 or new_reward >= old_reward)  # recovery may give up reward
                    and new_cost - old_cost <= slack
                ):
                    accepted = True
                    break
                step *= self.line_search_shrinking_factor
            if not accepted:
                for param, original in zip(actor, originals):
                    param.data = original.clone()

        value_losses, cost_value_losses = self._fit_critics(actor)
        self._n_updates += 1
        self.logger.record("train/cpo_case", case)
        self.logger.record("train/line_search_accepted", float(accepted))
        self.logger.record("train/step_rejected", float(rejected))
        self.logger.record("train/step_fraction", step if accepted else 0.0)
        self.logger.record("train/violation", float(c) if np.isfinite(c) else float("nan"))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/cost_value_loss", np.mean(cost_value_losses))
        self.logger.record(
            "train/explained_variance",
            explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()),
        )
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")

    @staticmethod
    def _set_actor(actor: list[th.Tensor], originals: list[th.Tensor], delta: th.Tensor) -> None:
        start = 0
        for param, original in zip(actor, originals):
            n = param.numel()
            param.data = original + delta[start : start + n].view_as(original)
            start += n

    def _fit_critics(self, actor: list[th.Tensor]) -> tuple[list[float], list[float]]:
        """Reward and cost critics by Adam on their returns; the actor is left alone."""
        value_losses, cost_value_losses = [], []
        for _ in range(self.n_epochs):
            for batch in self.rollout_buffer.get(self.batch_size):
                value_loss = F.mse_loss(
                    batch.returns, self.policy.predict_values(batch.observations).flatten()
                )
                cost_loss = F.mse_loss(
                    batch.cost_returns, self.policy.predict_cost_values(batch.observations)
                )
                self.policy.optimizer.zero_grad()
                (value_loss + self.cost_vf_coef * cost_loss).backward()
                for param in actor:
                    param.grad = None
                self.policy.optimizer.step()
                value_losses.append(value_loss.item())
                cost_value_losses.append(cost_loss.item())
        return value_losses, cost_value_losses
