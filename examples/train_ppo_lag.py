"""Prune the default task (a CNN on Fashion-MNIST) to 10% of its parameters with PPOLag
(ratio mode: one keep-fraction per layer group, the paper's coarse setting).

python examples/train_ppo_lag.py [--timesteps 6000] [--seed 0]
"""

import argparse
import time

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

import prune_env  # noqa: F401  (registers PruneEnv-v0)
from agents import make_agent


class FinalEpisodes(BaseCallback):
    """Keeps the final-step info of every episode (accuracy, cost, masks)."""

    def __init__(self):
        super().__init__()
        self.finals = []

    def _on_step(self):
        self.finals += [info for info, done in zip(self.locals["infos"], self.locals["dones"]) if done]
        return True


parser = argparse.ArgumentParser()
parser.add_argument("--timesteps", type=int, default=3000)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--limit", type=float, default=0.1)
args = parser.parse_args()

env = gym.make(
    "PruneEnv-v0", task="fashion-mnist-cnn", budget="params", budget_limit=args.limit, action_mode="ratio"
)
model = make_agent("ppo-lag", env, seed=args.seed, verbose=0)  # cost_limit = env's budget_limit
episodes = FinalEpisodes()
start = time.time()
model.learn(args.timesteps, callback=episodes, progress_bar=True)
wall = time.time() - start

last = episodes.finals[-100:]
inside = np.mean([info["constraint_satisfied"] for info in last])
feasible = [info for info in episodes.finals if info["constraint_satisfied"]]
print(
    f"{args.timesteps} timesteps, {len(episodes.finals)} episodes in {wall:.0f} s; lambda = {model.lagrange_multiplier:.3f}"
)
print(
    f"last {len(last)} episodes: {inside:.0%} inside the budget, mean cost {np.mean([i['cost'] for i in last]):.3f}, "
    f"mean validation accuracy {np.mean([i['accuracy'] for i in last]):.3f}"
)
if feasible:
    best = max(feasible, key=lambda info: info["accuracy"])
    print(
        f"best network within the budget: validation accuracy {best['accuracy']:.4f}, params ratio {best['params_ratio']:.3f}, "
        f"FLOPs ratio {best['flops_ratio']:.3f}, widths {best['widths']}"
    )
