"""A2C on PruneEnv-v0 (short rollouts, the paper's small MLP)."""

import torch

A2C = dict(
    n_steps=16,
    learning_rate=7e-4,
    gamma=0.99,
    gae_lambda=0.95,
    ent_coef=0.0,
    policy_kwargs=dict(net_arch=[32, 32], activation_fn=torch.nn.Tanh),
)
