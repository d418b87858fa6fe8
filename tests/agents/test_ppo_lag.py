"""PPOLag: constraint satisfaction, equivalence to PPO, save/load, cost conventions, logging."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import SubprocVecEnv
from toy_envs import GreedyBreaksLimitEnv

from agents import MissingCostError, PPOLag

FAST = dict(n_steps=64, batch_size=32, n_epochs=2, policy_kwargs=dict(net_arch=[16]))


class RolloutRecorder(BaseCallback):
    """Multiplier and mean episodic cost after every rollout."""

    def __init__(self):
        super().__init__()
        self.history = []

    def _on_rollout_end(self):
        episodes = self.model._rollout_episode_costs
        self.history.append((float(self.model.lagrange_multiplier), float(np.mean(np.stack(episodes)[:, 0]))))

    def _on_step(self):
        return True


def _toy(n_envs=2, **kwargs):
    return make_vec_env(lambda: GreedyBreaksLimitEnv(**kwargs), n_envs=n_envs, seed=0)


def test_ppo_lag_respects_the_limit_where_ppo_does_not():
    kwargs = dict(n_steps=200, batch_size=100, learning_rate=1e-3, seed=0, policy_kwargs=dict(net_arch=[16]))
    recorder = RolloutRecorder()
    lag = PPOLag("MlpPolicy", _toy(), lagrange_kwargs=dict(initial_value=1.0, lr=0.1), **kwargs)
    assert lag.cost_limit == pytest.approx(1.5)  # taken from env.budget_limit
    lag.learn(20_000, callback=recorder)
    multipliers, costs = map(np.asarray, zip(*recorder.history))
    final_cost = costs[-8:].mean()
    assert final_cost <= 1.5 * 1.15, costs[-8:]
    peak = int(multipliers.argmax())
    assert costs[: peak + 1].max() > 1.5 and multipliers[peak] > multipliers[0] + 1.0  # rose while violated
    assert multipliers[-1] < multipliers[peak]  # and fell back once the limit held

    ppo = PPO("MlpPolicy", _toy(), **kwargs)
    ppo.learn(20_000)
    assert np.mean([ep["r"] for ep in ppo.ep_info_buffer]) > 4.5  # greedy: cost == reward == 5


def test_with_multiplier_fixed_at_zero_updates_equal_ppo():
    common = dict(FAST, seed=3, learning_rate=1e-3)
    # one model at a time: both draw from torch's global random stream
    lag = PPOLag(
        "MlpPolicy", _toy(), cost_vf_coef=0.0, lagrange_kwargs=dict(initial_value=0.0, lr=0.0), **common
    )
    lag_initial = {k: v.clone() for k, v in lag.policy.state_dict().items()}
    lag.learn(256)
    ppo = PPO("MlpPolicy", _toy(), **common)
    for k, v in ppo.policy.state_dict().items():
        assert th.equal(v, lag_initial[k]), k  # the cost critic does not shift the initial weights
    ppo.learn(256)
    assert lag.lagrange_multiplier == 0.0
    changed = 0
    for k, v in ppo.policy.state_dict().items():
        assert th.equal(v, lag.policy.state_dict()[k]), k
        changed += not th.equal(v, lag_initial[k])
    assert changed > 0  # both really trained


def test_cost_critic_is_trained():
    lag = PPOLag("MlpPolicy", _toy(), cost_limit=1.5, seed=0, **FAST)
    before = [p.clone() for p in lag.policy.cost_value_net.parameters()]
    lag.learn(128)
    assert any(not th.equal(a, b) for a, b in zip(before, lag.policy.cost_value_net.parameters()))


@pytest.mark.parametrize("lagrangian", ["gradient", "pid"])
def test_save_load_continue_gives_same_multiplier(tmp_path, lagrangian):
    # a fixed cost per step makes the multiplier's path independent of sampled actions
    common = dict(FAST, seed=1, lagrangian=lagrangian, lagrange_kwargs=dict(initial_value=0.5))
    env = lambda: _toy(n_envs=1, fixed_cost=0.5)  # noqa: E731
    straight = PPOLag("MlpPolicy", env(), **common)
    straight.learn(64 * 6)
    resumed = PPOLag("MlpPolicy", env(), **common)
    resumed.learn(64 * 3)
    resumed.save(tmp_path / "agent")
    loaded = PPOLag.load(tmp_path / "agent", env=env())
    assert loaded.lagrange_multiplier == resumed.lagrange_multiplier != 0.5
    loaded.learn(64 * 3, reset_num_timesteps=False)
    assert loaded.num_timesteps == straight.num_timesteps
    assert loaded.lagrange_multiplier == pytest.approx(straight.lagrange_multiplier, rel=1e-12)
    fresh = PPOLag("MlpPolicy", env(), **common)
    fresh.learn(64 * 3)  # without the saved state, the multiplier would restart
    assert fresh.lagrange_multiplier != pytest.approx(straight.lagrange_multiplier)


def test_missing_cost_is_an_error():
    lag = PPOLag("MlpPolicy", _toy(report_cost=False), cost_limit=1.0, seed=0, **FAST)
    with pytest.raises(MissingCostError, match=r"info\['cost'\]"):
        lag.learn(64)


def test_cost_limit_required_without_budget_limit():
    env = make_vec_env(lambda: GreedyBreaksLimitEnv(), n_envs=1)
    env.envs[0].unwrapped.__dict__.pop("budget_limit")
    with pytest.raises(ValueError, match="pass cost_limit"):
        PPOLag("MlpPolicy", env, **FAST)


def test_two_constraints_two_multipliers():
    lag = PPOLag(
        "MlpPolicy",
        _toy(two_costs=True),
        cost_limit=[1.0, 0.1],
        seed=0,
        lagrange_kwargs=dict(initial_value=0.0, lr=0.1),
        **FAST,
    )
    lag.learn(128)
    values = lag.lagrange_multiplier
    assert values.shape == (2,) and (values > 0).all()
    with pytest.raises(ValueError, match="one cost_limit per cost"):
        PPOLag("MlpPolicy", _toy(two_costs=True), cost_limit=[1.0, 0.1, 0.1], seed=0, **FAST).learn(64)


def test_one_limit_with_several_costs_constrains_cost_key():
    # info["costs"] = [c, 0.5 c] and info["cost"] = c: one limit constrains info["cost"]
    lag = PPOLag("MlpPolicy", _toy(n_envs=1, two_costs=True), cost_limit=1.0, seed=0, **FAST)
    lag.learn(64)
    first = np.stack(lag.ep_cost_buffer)[:, 0]
    assert lag.n_costs == 1 and first.max() > 0
    single = PPOLag("MlpPolicy", _toy(n_envs=1), cost_limit=1.0, seed=0, **FAST)
    single.learn(64)
    np.testing.assert_allclose(first, np.stack(single.ep_cost_buffer)[:, 0])  # the same cost, not 0.5 c


@pytest.mark.parametrize("action", ["multibinary", "box"])
def test_logs_and_action_spaces(tmp_path, action):
    lag = PPOLag("MlpPolicy", _toy(action=action), seed=0, **FAST)
    lag.set_logger(configure(str(tmp_path), ["csv"]))
    lag.learn(3 * 128)  # train/ keys are dumped with the rollout after the update
    logged = (tmp_path / "progress.csv").read_text()
    for key in ("rollout/ep_cost_mean", "train/lagrange_multiplier", "train/cost_value_loss"):
        assert key in logged


def test_subproc_vec_env():
    env = make_vec_env(lambda: GreedyBreaksLimitEnv(), n_envs=2, vec_env_cls=SubprocVecEnv, seed=0)
    try:
        lag = PPOLag("MlpPolicy", env, seed=0, **FAST)
        lag.learn(128)
        assert len(lag.ep_cost_buffer) > 0
    finally:
        env.close()


def test_truncated_episodes_bootstrap_the_cost_value():
    from gymnasium.wrappers import TimeLimit

    env = make_vec_env(
        lambda: TimeLimit(GreedyBreaksLimitEnv(horizon=5), max_episode_steps=3), n_envs=1, seed=0
    )
    lag = PPOLag("MlpPolicy", env, cost_limit=1.0, seed=0, learning_rate=0.0, **{**FAST, "n_steps": 12})
    lag.learn(12)  # lr 0: the critic that bootstrapped is the critic we query below
    buf = lag.rollout_buffer
    used = buf.actions.reshape(12, -1).mean(1)  # the toy's raw cost of each step
    extra = buf.costs[:, 0, 0] - used
    terminal_obs = th.tensor([[3 / 5, 1.0]])
    with th.no_grad():
        bootstrap = lag.cost_gamma * float(lag.policy.predict_cost_values(terminal_obs)[0, 0])
    truncated_steps = [2, 5, 8, 11]
    np.testing.assert_allclose(extra[truncated_steps], bootstrap, rtol=1e-5)
    np.testing.assert_allclose(np.delete(extra, truncated_steps), 0.0, atol=1e-7)


def test_p3o_loss_is_the_clipped_reward_surrogate_plus_the_relu_penalty():
    from types import SimpleNamespace

    from agents import P3O

    model = P3O("MlpPolicy", _toy(n_envs=1), kappa=3.0, **FAST)
    adv = th.tensor([1.0, -2.0, 0.5, 3.0])
    cadv = th.tensor([[0.2], [-0.1], [0.4], [0.0]])
    ratio = th.tensor([1.5, 0.7, 1.0, 0.9])
    data = SimpleNamespace(advantages=adv, cost_advantages=cadv)
    model._violation = np.array([0.05])
    got = model._policy_loss(data, ratio, 0.2, th.zeros(1))
    a = (adv - adv.mean()) / (adv.std() + 1e-8)
    c = cadv[:, 0] - cadv[:, 0].mean()
    clipped = ratio.clamp(0.8, 1.2)
    reward_loss = -th.min(a * ratio, a * clipped).mean()
    cost_surrogate = th.max(c * ratio, c * clipped).mean()
    expected = reward_loss + 3.0 * th.relu(cost_surrogate + 0.05)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    model._violation = np.array([-10.0])  # far inside the limit: the penalty is off
    assert model._policy_loss(data, ratio, 0.2, th.zeros(1)).item() == pytest.approx(
        reward_loss.item(), rel=1e-6
    )


@pytest.mark.parametrize("scale", [False, True])
def test_combined_advantage_is_the_hand_computed_one(scale):
    from types import SimpleNamespace

    lag = PPOLag("MlpPolicy", _toy(n_envs=1), seed=0, scale_cost_advantage=scale, **FAST)
    adv = th.tensor([1.0, -2.0, 0.5, 3.0])
    cadv = th.tensor([[0.2], [-0.1], [0.4], [0.0]])
    ratio = th.tensor([1.5, 0.7, 1.0, 0.9])
    lam = th.tensor([2.0])
    got = lag._policy_loss(SimpleNamespace(advantages=adv, cost_advantages=cadv), ratio, 0.2, lam)
    std = adv.std() + 1e-8
    a = (adv - adv.mean()) / std
    c = cadv[:, 0] - cadv[:, 0].mean()
    if scale:
        c = c / std
    combined = (a - 2.0 * c) / 3.0
    expected = -th.min(combined * ratio, combined * ratio.clamp(0.8, 1.2)).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_multiplier_is_updated_from_the_rollout_before_the_gradient_step():
    lag = PPOLag("MlpPolicy", _toy(n_envs=1), seed=0, lagrange_kwargs=dict(initial_value=0.0, lr=1.0), **FAST)
    used = []
    original = lag._policy_loss

    def spy(data, ratio, clip, multipliers):
        used.append(float(multipliers[0]))
        return original(data, ratio, clip, multipliers)

    lag._policy_loss = spy
    lag.learn(64)  # one rollout of 64 steps: 12 finished episodes of 5 steps
    episodes = np.stack(lag._rollout_episode_costs)[:, 0]
    expected = max(0.0, episodes.mean() - lag.cost_limit)  # lambda = 0 + lr * (J_c - d)
    assert len(episodes) == 12 and expected > 0
    assert lag.lagrange_multiplier == pytest.approx(expected)
    assert used and all(u == pytest.approx(expected) for u in used)


def test_no_update_from_a_rollout_without_finished_episodes_and_an_explicit_window():
    lag = PPOLag("MlpPolicy", _toy(n_envs=1), seed=0, lagrange_kwargs=dict(initial_value=0.5, lr=1.0),
                 **dict(FAST, n_steps=4, batch_size=4))  # fmt: skip
    lag.learn(4)  # 4 steps of a 5-step episode: nothing finished
    assert lag.lagrange_multiplier == 0.5
    windowed = PPOLag("MlpPolicy", _toy(n_envs=1), seed=0, cost_window=3,
                      lagrange_kwargs=dict(initial_value=0.0, lr=1.0), **FAST)  # fmt: skip
    windowed.learn(64)
    last3 = np.stack(list(windowed.ep_cost_buffer)[-3:])[:, 0].mean()
    assert windowed.lagrange_multiplier == pytest.approx(max(0.0, last3 - windowed.cost_limit))


def test_separate_cost_clip_leaves_the_actors_gradient_unscaled_by_the_cost_loss():
    lag = PPOLag("MlpPolicy", _toy(n_envs=1), seed=0, separate_cost_clip=True, **FAST)
    policy = lag.policy
    for p in policy.parameters():
        p.grad = th.ones_like(p) * 1e-4  # a tiny actor / value gradient
    for p in policy.cost_value_net.parameters():
        p.grad = th.ones_like(p) * 100.0  # a huge cost critic gradient
    actor_before = [p.grad.clone() for p in policy.action_net.parameters()]
    lag._clip_gradients()
    for before, p in zip(actor_before, policy.action_net.parameters()):
        assert th.equal(before, p.grad)  # untouched: its own norm is under max_grad_norm
    cost_norm = th.sqrt(sum((p.grad**2).sum() for p in policy.cost_value_net.parameters()))
    assert float(cost_norm) == pytest.approx(lag.max_grad_norm, rel=1e-4)
    shared = PPOLag("MlpPolicy", _toy(n_envs=1), seed=0, **FAST)
    for p in shared.policy.parameters():
        p.grad = th.ones_like(p) * 1e-4
    for p in shared.policy.cost_value_net.parameters():
        p.grad = th.ones_like(p) * 100.0
    shared._clip_gradients()
    assert all(
        float(p.grad.abs().max()) < 1e-5 for p in shared.policy.action_net.parameters()
    )  # the coupling
