"""SAC-Lagrangian on PruneEnv-v0 in ratio mode (one keep-fraction per group).

Short episodes and a sparse reward: a small replay buffer, a few hundred random steps first, one
gradient step per environment step, SAC's automatic temperature; the multiplier as PPOLag's
(projected gradient from 0) with a step suited to updates after every episode.
"""

import torch

SAC_LAG = dict(
    learning_rate=1e-3,
    buffer_size=20_000,
    learning_starts=300,
    batch_size=64,
    tau=0.01,
    gamma=0.99,
    train_freq=1,
    gradient_steps=1,
    ent_coef="auto",
    policy_kwargs=dict(net_arch=[64, 64], activation_fn=torch.nn.ReLU),
    cost_gamma=0.99,
    lagrange_kwargs=dict(initial_value=0.0, lr=0.5, optimizer="sgd"),
)
