"""TD3 on PruneEnv-v0 in ratio mode (one keep-fraction per group, AMC-like)."""

TD3 = dict(
    learning_rate=1e-3,
    buffer_size=50_000,
    learning_starts=100,
    batch_size=64,
    gamma=0.99,
    train_freq=(1, "episode"),
    policy_kwargs=dict(net_arch=[64, 64]),
)
