"""Swap in other algorithms: MaskablePPO on a fixed cost penalty, and a consumer of
Safety-Gymnasium's 6-tuple step through the wrapper.

    python examples/swap_algorithm.py [--timesteps 600]
"""

import argparse

import gymnasium as gym

import prune_env  # noqa: F401
from agents import make_agent
from prune_env.wrappers import Gymnasium2SafetyGymnasium

parser = argparse.ArgumentParser()
parser.add_argument("--timesteps", type=int, default=600)
parser.add_argument("--task", default="fashion-mnist-cnn")
args = parser.parse_args()

# 1. Any SB3 / sb3-contrib algorithm: here MaskablePPO on reward - 2 * cost.
env = gym.make("PruneEnv-v0", task=args.task, budget="params", budget_limit=0.25)
model = make_agent("maskable-ppo-penalty", env, penalty_coef=2.0, seed=0)
model.learn(args.timesteps)
print(
    f"maskable-ppo-penalty: {args.timesteps} steps, mean penalized return {sum(e['r'] for e in model.ep_info_buffer) / len(model.ep_info_buffer):.3f}"
)

# 2. A CMDP library speaking Safety-Gymnasium's convention sees (obs, reward, cost, terminated, truncated, info).
safe_env = Gymnasium2SafetyGymnasium(
    gym.make("PruneEnv-v0", task=args.task, budget="flops", budget_limit=0.3)
)
obs, info = safe_env.reset(seed=0)
episode_cost, done = 0.0, False
while not done:
    obs, reward, cost, terminated, truncated, info = safe_env.step(safe_env.action_space.sample())
    episode_cost += cost
    done = terminated or truncated
print(
    f"6-tuple episode: reward {reward:.3f}, episode cost {episode_cost:.3f}, within budget {info['constraint_satisfied']}"
)
