"""Quick start: make PruneEnv-v0, prune with a random agent, print reward and cost."""

import gymnasium as gym

import prune_env  # noqa: F401  (registers PruneEnv-v0)

env = gym.make("PruneEnv-v0", budget="params", budget_limit=0.1)
print(env.unwrapped)
obs, info = env.reset(seed=0)
env.action_space.seed(0)
for episode in range(3):
    obs, info = env.reset()
    done = False
    while not done:
        action = env.action_space.sample()  # 1 = keep the unit
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    print(
        f"episode {episode}: accuracy {reward:.3f}, cost (params ratio) {info['cost']:.3f}, "
        f"within budget: {info['constraint_satisfied']}, widths {info['widths']}"
    )
pruned = env.unwrapped.export()
print(pruned)
