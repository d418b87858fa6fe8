"""How fast is PruneEnv-v0? Construction time and random-policy episodes per second.

python benchmarks/env_speed.py [--task fashion-mnist-cnn] [--episodes 20] [--device auto]
    [--n-envs 1 2]

With ``--n-envs`` the random policy steps N copies in SB3's ``SubprocVecEnv`` (the torch threads
of this process split between them, as ``prune-env prune --n-envs N`` does) and the line per N
gives episodes per second over ``--episodes`` episodes of each copy.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import SubprocVecEnv

import prune_env  # noqa: F401
from benchmarks.entrypoint import run_script


def _make(args, threads: int) -> gym.Env:
    torch.set_num_threads(threads)
    return gym.make(
        "PruneEnv-v0", task=args.task, budget=args.budget, action_mode=args.action_mode, device=args.device
    )


def single(args) -> None:
    start = time.perf_counter()
    env = _make(args, torch.get_num_threads())
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
    print(f"task {args.task} on {u.problem.device}: {u.num_groups} groups, max_units {u.max_units}")
    print(f"construction: {built:.2f} s")
    print(
        f"random episode: median {statistics.median(times) * 1000:.0f} ms, "
        f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {args.episodes} episodes"
    )
    print(f"mean reward {statistics.mean(rewards):.3f}; last cost {info['cost']:.3f}")


def parallel(args, n_envs: int) -> None:
    """Episodes per second of a random policy over ``n_envs`` subprocess copies."""
    threads = max(1, torch.get_num_threads() // n_envs)
    vec = SubprocVecEnv([functools.partial(_make, args, threads) for _ in range(n_envs)])
    try:
        vec.seed(0)
        vec.reset()
        space = vec.action_space
        space.seed(0)
        steps = args.episodes * vec.get_attr("num_groups")[0]
        vec.step(np.stack([space.sample() for _ in range(n_envs)]))  # warm-up
        start = time.perf_counter()
        finished = 0
        for _ in range(steps):
            _, _, dones, _ = vec.step(np.stack([space.sample() for _ in range(n_envs)]))
            finished += int(dones.sum())
        seconds = time.perf_counter() - start
    finally:
        vec.close()
    print(
        f"n_envs {n_envs} ({threads} thread(s) each): {finished} episodes in {seconds:.1f} s = "
        f"{finished / seconds:.2f} episodes/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fashion-mnist-cnn")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--budget", default="params")
    parser.add_argument("--action-mode", default="mask", choices=["mask", "ratio"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-envs", type=int, nargs="*", default=None, help="subprocess copies, e.g. 1 2")
    args = parser.parse_args()
    if not args.n_envs:
        single(args)
        return
    for n in args.n_envs:
        parallel(args, n)


if __name__ == "__main__":
    run_script(main)
