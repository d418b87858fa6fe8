"""AMC's agent (He et al., ECCV 2018): DDPG on one keep-ratio per group, actions clipped during
the episode so that every episode meets the budget (prune_env.wrappers.ClipToBudget), reward =
accuracy. Following AMC: two hidden layers of 300, soft target updates tau 0.01, batch 64,
undiscounted returns, a warm-up of random episodes, truncated-normal exploration of scale 0.5
(of the [0, 1] ratio range; 1.0 in the agent's [-1, 1] units) decaying by 0.99 per episode.
Departures: one learning rate for actor and critic (SB3's DDPG has one; AMC used 1e-4 / 1e-3),
a warm-up of 400 steps instead of 100 episodes (our runs are 1.5k-3k steps), and no moving-
average reward baseline (it does not change the optimum).
"""

DDPG = dict(
    learning_rate=5e-4,
    buffer_size=2_000,
    learning_starts=400,
    batch_size=64,
    tau=0.01,
    gamma=1.0,
    train_freq=(1, "episode"),
    gradient_steps=-1,
    policy_kwargs=dict(net_arch=[300, 300]),
)
NOISE_SIGMA = 1.0
NOISE_DECAY = 0.99
