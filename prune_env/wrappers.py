"""Wrappers that connect the env to the rest of the RL world.

- :class:`CostPenalty`: reward minus ``coef`` times cost, so any unconstrained algorithm (PPO,
  A2C, TRPO, MaskablePPO, SAC, TD3, ...) runs as a fixed-penalty baseline.
- :class:`Gymnasium2SafetyGymnasium`: Safety-Gymnasium's 6-tuple ``step`` (obs, reward, cost,
  terminated, truncated, info), for CMDP libraries that speak it.
- :class:`SafetyGymnasium2Gymnasium`: the way back, cost moved into ``info["cost"]``.
- :class:`ClipToBudget`: AMC's clipping of ratio actions, so every episode meets the budget.
- :class:`ScaleToBudget`: ratio actions read as shares of the feasible range, for the same end.
- :class:`Saute`: Sauté RL's state augmentation, so any unconstrained algorithm learns under an
  episodic cost budget.
- :class:`SensitivityFeatures`: each group's measured sensitivity to pruning in the observation.
- :class:`CostOverLimit`: the cost as a share of the limit drawn for the episode, so one cost
  limit (1) holds for an env whose limit is drawn per episode.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from prune_env.bisection import largest_fitting_ratio
from prune_env.cost_convention import read_costs


class CostPenalty(gym.Wrapper):
    """Reward minus ``coef`` times cost (with several budgets, ``coef`` may be a list).

    The original reward stays in ``info["unpenalized_reward"]``; the cost stays in ``info``.
    """

    def __init__(self, env: gym.Env, coef: float | Sequence[float] = 1.0, cost_key: str = "cost"):
        super().__init__(env)
        self.coef = np.asarray(coef, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(self.coef)):
            raise ValueError(f"coef must be finite, got {coef!r}")
        self.cost_key = cost_key

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        costs = read_costs(info, self.cost_key)
        if self.coef.size == 1:
            penalty = self.coef[0] * costs[0]  # one coefficient penalizes the primary cost
        elif self.coef.size == costs.size:
            penalty = float(self.coef @ costs)
        else:
            raise ValueError(
                f"CostPenalty has {self.coef.size} coefficients but the env reports {costs.size} costs"
            )
        return obs, float(reward - penalty), terminated, truncated, {**info, "unpenalized_reward": reward}


class Gymnasium2SafetyGymnasium(gym.Wrapper):
    """``step`` returns (obs, reward, cost, terminated, truncated, info), cost from ``info``."""

    def __init__(self, env: gym.Env, cost_key: str = "cost"):
        super().__init__(env)
        self.cost_key = cost_key

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, float(read_costs(info, self.cost_key)[0]), terminated, truncated, info


class SafetyGymnasium2Gymnasium(gym.Wrapper):
    """Turns a 6-tuple ``step`` into Gymnasium's 5-tuple, with the cost in ``info["cost"]``."""

    def step(self, action):
        result = self.env.step(action)
        if len(result) != 6:
            raise ValueError(
                f"expected a 6-tuple (obs, reward, cost, terminated, truncated, info), got {len(result)} items"
            )
        obs, reward, cost, terminated, truncated, info = result
        return obs, reward, terminated, truncated, {**info, "cost": float(cost)}


class ClipToBudget(gym.ActionWrapper):
    """AMC's action clipping (He et al., ECCV 2018) for ``action_mode="ratio"``: each keep-ratio
    is lowered to the largest with which the episode can still meet the first budget when every
    later group keeps one unit (``PruneEnv.max_keep_ratio``), so every episode is feasible by the
    env's analytic estimate (exact for parameters, and for FLOPs on sequential and residual
    networks; the FLOPs ratio stands in for latency and callables). The clipped ratio is
    reported in ``info["clipped_ratio"]``."""

    def __init__(self, env: gym.Env):
        if getattr(env.unwrapped, "action_mode", None) != "ratio":
            raise ValueError("ClipToBudget needs a PruneEnv with action_mode='ratio'")
        super().__init__(env)

    def action(self, action):
        bound = self.env.unwrapped.max_keep_ratio()
        self._clipped = np.minimum(np.asarray(action, dtype=np.float32), np.float32(bound))
        return self._clipped

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return (
            obs,
            reward,
            terminated,
            truncated,
            {**info, "clipped_ratio": float(self._clipped.reshape(-1)[0])},
        )


class ScaleToBudget(ClipToBudget):
    """A feasibility-preserving reading of ``action_mode="ratio"``: the action is the share of
    the current group's feasible range that is kept, ``ratio = action * max_keep_ratio()``, so
    every action meets the first budget (by the env's analytic estimate, exact for parameters and FLOPs)
    and none is wasted on the infeasible side, where :class:`ClipToBudget` maps every action
    above the bound to the bound. 1 spends all the budget the later groups can spare (each of
    them keeping one unit), 0 keeps one unit. The kept ratio is ``info["clipped_ratio"]``."""

    def action(self, action):
        share = np.clip(np.asarray(action, dtype=np.float32), 0.0, 1.0)
        self._clipped = share * np.float32(self.env.unwrapped.max_keep_ratio())
        return self._clipped


class MultiBinaryAsMultiDiscrete(gym.ActionWrapper):
    """Presents ``MultiBinary(n)`` as ``MultiDiscrete([2] * n)``, for algorithms that mishandle
    MultiBinary's int8 actions (sb3-contrib's RecurrentPPO fails in its loss on them)."""

    def __init__(self, env: gym.Env):
        if not isinstance(env.action_space, gym.spaces.MultiBinary):
            raise TypeError(f"expected a MultiBinary action space, got {env.action_space}")
        super().__init__(env)
        self.action_space = gym.spaces.MultiDiscrete([2] * int(np.prod(env.action_space.shape)))

    def action(self, action):
        return np.asarray(action, dtype=np.int8).reshape(self.env.action_space.shape)


class Saute(gym.Wrapper):
    """Sauté RL (Sootla et al., ICML 2022): the remaining safety budget joins the observation,
    and once it is spent the reward is replaced, so an unconstrained algorithm on the wrapped env
    solves the constrained problem "episodic cost <= budget".

    The safety state starts at 1 and after each step becomes ``(z - cost / budget) /
    cost_gamma`` (``cost_gamma=1``: the undiscounted episodic cost of PruneEnv's budgets); it is
    appended to the observation, clipped to ``[-1, 1]`` there. A step that ends with ``z < 0``
    earns ``unsafe_reward`` instead of its reward. The cost stays in ``info``, the original
    reward in ``info["unsauted_reward"]`` and the safety state in ``info["safety_state"]``.

    ``z = 0`` (the budget spent exactly) is safe here, deliberately: with ``cost_gamma=1`` the
    episode ends with ``z = 1 - J_c / budget``, and ``z >= 0`` is exactly the env's
    ``constraint_satisfied`` (``J_c <= limit``), so the wrapper rewards the same networks the
    env and the leaderboards count as feasible. The paper and OmniSafe treat ``z = 0`` as spent
    (``z > 0`` safe); the two differ only for a cost exactly at the limit.

    On PruneEnv the cost arrives at the last step only, so ``z`` stays 1 until the episode ends
    and the appended entry tells the agent nothing before then; PruneEnv's own observation
    already carries the estimated budget used and remaining (``budget_used``,
    ``budget_remaining``). There Sauté acts through its reward replacement alone.

    Args:
        budget: the episodic cost limit (default: the env's ``budget_limit``, the first one).
        unsafe_reward: the reward once the budget is spent (the paper uses a large negative
            constant; PruneEnv's rewards are accuracies in [0, 1]).
    """

    def __init__(
        self,
        env: gym.Env,
        budget: float | None = None,
        unsafe_reward: float = -1.0,
        cost_gamma: float = 1.0,
        cost_key: str = "cost",
    ):
        super().__init__(env)
        if budget is None:
            try:  # the outermost wrapper's (CostOverLimit's 1 for drawn limits), else the env's
                limit = env.get_wrapper_attr("budget_limit")
            except AttributeError:
                raise ValueError("Saute needs budget=... (the env has no budget_limit)") from None
            budget = limit[0] if isinstance(limit, (list, tuple)) else limit
        if not np.isfinite(budget) or budget <= 0:
            raise ValueError(f"the Sauté budget must be a positive number, got {budget!r}")
        if not 0.0 < cost_gamma <= 1.0:
            raise ValueError(f"cost_gamma must be in (0, 1], got {cost_gamma}")
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError("Saute augments flat Box observations only")
        self.budget, self.unsafe_reward = float(budget), float(unsafe_reward)
        self.cost_gamma, self.cost_key = float(cost_gamma), cost_key
        self.observation_space = gym.spaces.Box(
            np.append(space.low, -1.0).astype(space.dtype), np.append(space.high, 1.0).astype(space.dtype),
            dtype=space.dtype,
        )  # fmt: skip
        self.safety_state = 1.0

    def _augment(self, obs):
        return np.append(obs, np.clip(self.safety_state, -1.0, 1.0)).astype(self.observation_space.dtype)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.safety_state = 1.0
        return self._augment(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        cost = float(read_costs(info, self.cost_key)[0])
        self.safety_state = (self.safety_state - cost / self.budget) / self.cost_gamma
        sauted = float(reward) if self.safety_state >= 0 else self.unsafe_reward
        info = {**info, "unsauted_reward": reward, "safety_state": self.safety_state}
        return self._augment(obs), sauted, terminated, truncated, info


class CostOverLimit(gym.Wrapper):
    """Each cost divided by the limit in force for the episode (``env.unwrapped.budget_limits``),
    so the constraint "cost <= limit" reads "cost <= 1" whatever limit an episode drew. The
    wrapper's ``budget_limit`` is therefore 1 (a list of ones with several budgets), and a
    constrained agent that takes its ``cost_limit`` from the env gets that. The unscaled costs
    stay in ``info["raw_costs"]``.

    Only for relative budgets (ratios): a callable's absolute value over its limit would be a
    different constraint for a different limit scale, and is refused."""

    def __init__(self, env: gym.Env):
        base = env.unwrapped
        if getattr(base, "problem", None) is None:
            raise ValueError("CostOverLimit needs a PruneEnv (it reads the limits in force)")
        absolute = [b.name for b in base.problem.budgets if not b.relative]
        if absolute:
            raise ValueError(
                f"CostOverLimit scales ratio budgets only; {absolute} are absolute: give them a fixed limit"
            )
        super().__init__(env)
        self._several = isinstance(base.budget_limit, list)

    @property
    def budget_limit(self) -> float | list[float]:
        return [1.0] * len(self.env.unwrapped.budget_limits) if self._several else 1.0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        raw = read_costs(info)
        limits = np.asarray(self.env.unwrapped.budget_limits, dtype=np.float64)
        scaled = (raw / limits).tolist()
        return (
            obs,
            reward,
            terminated,
            truncated,
            {**info, "cost": scaled[0], "costs": scaled, "raw_costs": raw.tolist()},
        )


class SensitivityFeatures(gym.ObservationWrapper):
    """Each group's sensitivity to pruning, measured once, appended to PruneEnv's observation
    (the per-layer sensitivity analysis of Li et al. 2017, as a feature for the agent).

    At construction every group alone is pruned to ``ratio`` (default: the one keep-ratio that,
    applied to every group, meets the first budget by the env's estimate, so each group is probed
    at the scale an episode works at) and scored with no fine-tune. Two entries are appended for
    the current group: its accuracy drop from the dense network's score, and that drop over the
    largest group's drop (its rank among the groups, in [0, 1]). The probe costs one scored
    evaluation per group (``probe_evaluations``); the drops are in ``sensitivity``."""

    def __init__(self, env: gym.Env, ratio: float | None = None):
        base = env.unwrapped
        problem = getattr(base, "problem", None)
        if getattr(base, "action_mode", None) is None or problem is None:
            raise ValueError("SensitivityFeatures needs a PruneEnv (it scores masks through env.problem)")
        if len(getattr(base, "problems", {})) > 1:
            raise ValueError("SensitivityFeatures measures one network once: give it an env over one task")
        super().__init__(env)
        self.ratio = float(ratio) if ratio is not None else uniform_ratio_within_budget(problem)
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {self.ratio}")
        saved = problem.finetune_steps
        problem.finetune_steps = 0
        try:
            dense = [np.ones(g.width, dtype=bool) for g in problem.groups]
            reference = problem.score(dense, source="sensitivity", rng=base.np_random).accuracy
            pruned = problem.keep_from_ratios([self.ratio] * problem.num_groups)
            drops = []
            for g in problem.groups:
                keep = list(dense)
                keep[g.index] = pruned[g.index]
                score = problem.score(keep, source="sensitivity", rng=base.np_random).accuracy
                drops.append(max(reference - score, 0.0))
        finally:
            problem.finetune_steps = saved
        self.sensitivity = np.asarray(drops, dtype=np.float32)
        self.probe_evaluations = problem.num_groups + 1
        largest = float(self.sensitivity.max())
        self._relative = self.sensitivity / largest if largest > 0 else np.zeros_like(self.sensitivity)
        low, high = env.observation_space.low, env.observation_space.high
        self.observation_space = gym.spaces.Box(
            np.concatenate([low, [0.0, 0.0]]).astype(np.float32),
            np.concatenate([high, [1.0, 1.0]]).astype(np.float32),
            dtype=np.float32,
        )
        self._group = 0

    def reset(self, **kwargs):
        self._group = 0
        return super().reset(**kwargs)

    def step(self, action):
        self._group += 1
        return super().step(action)

    def observation(self, observation):
        g = min(self._group, len(self.sensitivity) - 1)
        extra = np.array([self.sensitivity[g], self._relative[g]], dtype=np.float32)
        return np.concatenate([np.asarray(observation, dtype=np.float32), np.clip(extra, 0.0, 1.0)])


def uniform_ratio_within_budget(problem, steps: int = 20) -> float:
    """The largest keep-ratio that, applied to every group of a :class:`~prune_env.PruneProblem`,
    meets its first budget by the analytic estimate (1 when nothing needs pruning)."""

    def fits(ratio: float) -> bool:
        return problem.fits_estimate(problem.keep_from_ratios([ratio] * problem.num_groups))

    return max(largest_fitting_ratio(fits, steps), 1e-6)
