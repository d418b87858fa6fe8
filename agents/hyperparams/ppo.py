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

# PPOLag on top of PPO: cost discount and GAE as in the paper (1.0 for cost), lambda starts at 1.
PPO_LAG = dict(
    PPO,
    cost_gamma=0.99,
    cost_gae_lambda=1.0,
    cost_vf_coef=0.5,
    lagrangian="gradient",
    lagrange_kwargs=dict(initial_value=1.0, lr=0.05, optimizer="sgd"),
)

PPO_PID_LAG = dict(
    PPO_LAG,
    lagrangian="pid",
    lagrange_kwargs=dict(kp=1.0, ki=0.1, kd=0.5, initial_value=1.0, delta_ema=0.5, cost_ema=0.5, d_delay=2),
)

RECURRENT_PPO = dict(PPO, policy_kwargs=dict(net_arch=[32, 32], lstm_hidden_size=32))
