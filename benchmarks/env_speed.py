"""How fast is PruneEnv-v0? Construction time and random-policy episodes per second.

python benchmarks/env_speed.py [--task fashion-mnist-cnn] [--episodes 20] [--device auto]
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym

import prune_env  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fashion-mnist-cnn")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--budget", default="params")
    parser.add_argument("--action-mode", default="mask", choices=["mask", "ratio"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    start = time.perf_counter()
    env = gym.make(
        "PruneEnv-v0", task=args.task, budget=args.budget, action_mode=args.action_mode, device=args.device
    )
    built = time.perf_counter() - start
    env.action_space.seed(0)
    times, rewards = [], []
    for episode in range(args.episodes):
        env.reset(seed=episode)
        start = time.perf_counter()
        done = False
        while not done:
            _, reward, done, _, info = env.step(env.action_space.sample())
        times.append(time.perf_counter() - start)
        rewards.append(reward)
    u = env.unwrapped
    print(f"task {args.task} on {u.device}: {u.num_groups} groups, max_units {u.max_units}")
    print(f"construction: {built:.2f} s")
    print(
        f"random episode: median {statistics.median(times) * 1000:.0f} ms, "
        f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {args.episodes} episodes"
    )
    print(f"mean reward {statistics.mean(rewards):.3f}; last cost {info['cost']:.3f}")


if __name__ == "__main__":
    main()
