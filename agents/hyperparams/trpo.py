"""TRPO (sb3-contrib) on PruneEnv-v0."""

import torch

TRPO = dict(
    n_steps=128,
    batch_size=64,
    learning_rate=1e-3,
    gamma=0.99,
    gae_lambda=0.95,
    target_kl=0.01,
    policy_kwargs=dict(net_arch=[32, 32], activation_fn=torch.nn.Tanh),
)
