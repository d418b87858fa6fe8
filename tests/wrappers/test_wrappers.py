"""Cost penalty and the Safety-Gymnasium 6-tuple convention, both ways."""

from __future__ import annotations

import numpy as np
import pytest
from toy_envs import GreedyBreaksLimitEnv

from prune_env.wrappers import CostPenalty, Gymnasium2SafetyGymnasium, SafetyGymnasium2Gymnasium


def test_cost_penalty_subtracts_coef_times_cost():
    env = CostPenalty(GreedyBreaksLimitEnv(), coef=0.25)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.array([1, 1, 0, 0]))
    assert info["unpenalized_reward"] == 0.5 and info["cost"] == 0.5
    assert reward == pytest.approx(0.5 - 0.25 * 0.5)


def test_cost_penalty_with_one_coefficient_per_cost():
    env = CostPenalty(GreedyBreaksLimitEnv(two_costs=True), coef=[1.0, 2.0])
    env.reset(seed=0)
    _, reward, *_ = env.step(np.array([1, 1, 1, 1]))
    assert reward == pytest.approx(1.0 - (1.0 * 1.0 + 2.0 * 0.5))
    bad = CostPenalty(GreedyBreaksLimitEnv(two_costs=True), coef=[1.0, 2.0, 3.0])
    bad.reset()
    with pytest.raises(ValueError, match="3 coefficients"):
        bad.step(np.ones(4))


def test_cost_penalty_without_cost_is_an_error():
    env = CostPenalty(GreedyBreaksLimitEnv(report_cost=False))
    env.reset()
    with pytest.raises(KeyError, match="no cost"):
        env.step(np.ones(4))


def test_safety_gymnasium_round_trip():
    six = Gymnasium2SafetyGymnasium(GreedyBreaksLimitEnv())
    six.reset(seed=0)
    obs, reward, cost, terminated, truncated, info = six.step(np.array([1, 0, 0, 0]))
    assert (reward, cost, terminated, truncated) == (0.25, 0.25, False, False)
    five = SafetyGymnasium2Gymnasium(Gymnasium2SafetyGymnasium(GreedyBreaksLimitEnv()))
    five.reset(seed=0)
    result = five.step(np.array([1, 1, 1, 0]))
    assert len(result) == 5 and result[4]["cost"] == 0.75 and result[1] == 0.75


def test_saute_tracks_the_remaining_budget_and_replaces_the_reward_once_spent():
    from toy_envs import TradeoffEnv

    from prune_env.wrappers import Saute

    env = Saute(TradeoffEnv())  # budget: the env's budget_limit, 0.5
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (3,) and obs[-1] == 1.0
    cheap = np.array([1, 1, 0, 0])  # cost 0.05 per step: 10% of the budget
    obs, reward, *_, info = env.step(cheap)
    assert (
        reward == pytest.approx(0.5)
        and info["safety_state"] == pytest.approx(0.9)
        and obs[-1] == pytest.approx(0.9)
    )
    everything = np.ones(4)  # cost 0.55: the budget is spent
    obs, reward, *_, info = env.step(everything)
    assert info["safety_state"] == pytest.approx(0.9 - 1.1) and obs[-1] == pytest.approx(-0.2)
    assert (
        reward == -1.0
        and info["unsauted_reward"] == pytest.approx(0.6)
        and info["cost"] == pytest.approx(0.55)
    )
    _, reward, *_ = env.step(cheap)  # still below zero: no reward any more
    assert reward == -1.0
    obs, _ = env.reset()
    assert obs[-1] == 1.0 and env.safety_state == 1.0
    discounted = Saute(TradeoffEnv(), budget=1.0, cost_gamma=0.5, unsafe_reward=-5.0)
    discounted.reset()
    *_, info = discounted.step(cheap)
    assert info["safety_state"] == pytest.approx((1.0 - 0.05) / 0.5)
    with pytest.raises(ValueError, match="positive"):
        Saute(TradeoffEnv(), budget=0.0)


def test_saute_counts_a_budget_spent_exactly_as_safe_like_the_constraint():
    """z = 0 is J_c == limit, which the CMDP (and PruneEnv's constraint_satisfied) allows."""
    from toy_envs import GreedyBreaksLimitEnv

    from prune_env.wrappers import Saute

    env = Saute(GreedyBreaksLimitEnv(n=2, horizon=2, fixed_cost=0.5), budget=1.0)
    env.reset(seed=0)
    env.step(np.array([1, 1]))
    _, reward, done, _, info = env.step(np.array([1, 1]))  # episodic cost 1.0 == budget
    assert done and info["safety_state"] == 0.0 and reward == info["unsauted_reward"] == 1.0


def test_scale_to_budget_reads_actions_as_shares_of_the_feasible_range():
    import prune_env
    from prune_env.wrappers import ScaleToBudget

    env = ScaleToBudget(
        prune_env.PruneEnv("fashion-mnist-mlp", action_mode="ratio", budget_limit=0.1, eval_samples=10)
    )
    rng = np.random.default_rng(0)
    for seed, spend in ((0, None), (1, None), (2, 1.0)):
        env.reset(seed=seed)
        done = False
        while not done:
            share = np.array([rng.uniform() if spend is None else spend], dtype=np.float32)
            bound = env.unwrapped.max_keep_ratio()
            _, _, done, _, info = env.step(share)
            assert info["clipped_ratio"] == pytest.approx(float(share[0]) * bound)
        assert info["constraint_satisfied"] and info["cost"] <= 0.1
    assert info["cost"] > 0.09  # all of every range: the budget is spent


def test_sensitivity_features_are_each_group_pruned_alone_and_follow_the_steps():
    import prune_env
    from prune_env.wrappers import SensitivityFeatures, uniform_ratio_within_budget

    base = prune_env.PruneEnv("fashion-mnist-cnn", action_mode="ratio", budget_limit=0.1, eval_samples=200)
    base.finetune_steps = 5
    ratio = uniform_ratio_within_budget(base.problem)
    n = base.num_groups
    assert base.problem.estimated_budget(base.problem.keep_from_ratios([ratio] * n)) <= 0.1
    assert base.problem.estimated_budget(base.problem.keep_from_ratios([min(ratio + 0.05, 1.0)] * n)) > 0.1
    env = SensitivityFeatures(base)
    assert base.finetune_steps == 5 and env.ratio == ratio and env.probe_evaluations == n + 1
    # independently: every group alone at the ratio, scored without fine-tune
    base.finetune_steps = 0
    dense = base.problem.score([np.ones(g.width, dtype=bool) for g in base.groups]).accuracy
    for g in base.groups:
        keep = [np.ones(h.width, dtype=bool) for h in base.groups]
        keep[g.index] = base.problem.keep_from_ratios([ratio] * n)[g.index]
        assert env.sensitivity[g.index] == pytest.approx(max(dense - base.problem.score(keep).accuracy, 0.0))
    assert env.sensitivity.max() > 0.05  # at 10% of the parameters some group matters
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == (base.observation_space.shape[0] + 2,)
    for step in range(n):
        assert obs[-2] == pytest.approx(env.sensitivity[step])
        assert obs[-1] == pytest.approx(env.sensitivity[step] / env.sensitivity.max())
        assert env.observation_space.contains(obs)
        obs, _, done, _, _ = env.step(np.array([0.5], dtype=np.float32))
    assert done
