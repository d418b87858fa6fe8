"""PPO family (PPOLag, PPO, MaskablePPO, RecurrentPPO) on PruneEnv-v0.

Episodes are short (one step per prunable group) and the reward is sparse, so rollouts are
short and the network small, as in the paper's code (n_steps 128, minibatch 64, 10 epochs,
lr 3e-4, clip 0.2, target_kl 0.1, MLP [32, 32] tanh).
"""

import torch

PPO = dict(
    n_steps=128,
    batch_size=64,
    n_epochs=10,
    learning_rate=3e-4,
    gamma=0.99,
    gae_lambda=0.95,
    clip_range=0.2,
    ent_coef=0.0,
    target_kl=0.1,
    policy_kwargs=dict(net_arch=[32, 32], activation_fn=torch.nn.Tanh),
)

# PPOLag on top of PPO. The paper's objective normalizes the reward advantage only, which
# shrinks the cost term by std(A_r) (accuracy differences are small): lambda then has to climb
# past ~10-20 before the cost counts, far more rollouts than a CPU run has. Scaling the cost
# advantage by the same std keeps lambda in reward-per-cost units, where it settles near 1-3.
# Measured on fashion-mnist-cnn, params <= 0.1, ratio mode, 3000-5000 steps (see the notes of
# the agents issue): lambda lr 0.5-1 lags behind the policy and ends over budget; lr 5 keeps
# ~99% of the final episodes inside. lambda starts at 0 so that accuracy is learned first.
PPO_LAG = dict(
    PPO,
    policy_kwargs=dict(net_arch=[32, 32], activation_fn=torch.nn.Tanh, log_std_init=-1.0),
    cost_gamma=0.99,
    cost_gae_lambda=1.0,
    cost_vf_coef=0.5,
    scale_cost_advantage=True,
    lagrangian="gradient",
    lagrange_kwargs=dict(initial_value=0.0, lr=5.0, optimizer="sgd"),
)

# ppo-lag on ScaleToBudget (ppo-lag-scaled) with the best trial (11 of 12) of the Optuna study
# `python benchmarks/tune_ppo_lag.py --trials 12` (benchmarks/results/studies/ppo-lag-optuna.md:
# fashion-mnist-cnn, params <= 0.1, 1,500 timesteps, seed 100, value = validation accuracy of the
# selected mask): 70.4 against 69.4 for ppo-lag-scaled's defaults and 66.7 for ppo-lag's. The five
# best trials are all ppo-lag-scaled; within them a larger step (lr 1.2-1.3e-3, no KL stop,
# gamma 1) came first, by less than one seed's spread. Out of sample (the board's seeds 0-2,
# benchmarks/configs/studies/ppo-lag-scaled-tuned-1500.yaml; the study used seed 100) it did not
# carry over: test accuracy 87.77 +- 0.52 against 88.28 +- 0.52 for ppo-lag-scaled's defaults (the
# PPO_LAG settings above), which therefore stay; this set is kept as the study's record.
PPO_LAG_SCALED_TUNED = dict(
    PPO_LAG,
    learning_rate=1.34e-3,
    n_epochs=5,
    gamma=1.0,
    target_kl=1.0,
    policy_kwargs=dict(net_arch=[32, 32], activation_fn=torch.nn.Tanh, log_std_init=-0.256),
)

# The paper's settings (Malik et al. 2022, after Ray et al. 2019's PPO-Lagrangian): a softplus
# multiplier starting at 1 with learning rate 1, its parameter stepped by Adam on the violation
# (Ray et al.'s penalty update), cost GAE lambda 1.0, the cost advantage only centred. Kept
# reachable for comparison; ppo-lag's defaults above differ where measured better.
PPO_LAG_PAPER = dict(
    PPO,
    cost_gamma=0.99,
    cost_gae_lambda=1.0,
    cost_vf_coef=0.5,
    scale_cost_advantage=False,
    lagrangian="gradient",
    lagrange_kwargs=dict(initial_value=1.0, lr=1.0, optimizer="adam", parameterization="softplus"),
)

PPO_PID_LAG = dict(
    PPO_LAG,
    lagrangian="pid",
    lagrange_kwargs=dict(kp=10.0, ki=3.0, kd=2.0, initial_value=0.0, delta_ema=0.5, cost_ema=0.5, d_delay=2),
)

RECURRENT_PPO = dict(PPO, policy_kwargs=dict(net_arch=[32, 32], lstm_hidden_size=32))

# P3O (Zhang et al. 2022) on the same PPO and cost critic; the cost advantage only centred, as in
# OmniSafe's P3O, whose penalty weight (kappa 20) is kept.
P3O = dict(
    PPO,
    policy_kwargs=dict(net_arch=[32, 32], activation_fn=torch.nn.Tanh, log_std_init=-1.0),
    cost_gamma=0.99,
    cost_gae_lambda=1.0,
    cost_vf_coef=0.5,
    kappa=20.0,
)

# Sauté PPO: plain PPO on the Sauté-wrapped env (the budget in the observation).
SAUTE_PPO = dict(PPO, policy_kwargs=dict(net_arch=[32, 32], activation_fn=torch.nn.Tanh, log_std_init=-1.0))

# CPO (Achiam et al. 2017): a trust region of mean KL 0.01, 15 conjugate-gradient steps, the critics
# regressed for 10 epochs with Adam 1e-3 (OmniSafe's CPO defaults, on the PPO rollout size above).
CPO = dict(
    n_steps=128,
    batch_size=64,
    n_epochs=10,
    learning_rate=1e-3,
    gamma=0.99,
    gae_lambda=0.95,
    target_kl=0.01,
    cg_max_steps=15,
    policy_kwargs=dict(net_arch=[32, 32], activation_fn=torch.nn.Tanh, log_std_init=-1.0),
    cost_gamma=0.99,
    cost_gae_lambda=0.95,
)
