"""Gymnasium's vectorized envs work out of the box, the forking one included."""

from __future__ import annotations

import os
import subprocess
import sys

ASYNC = """
import gymnasium as gym
import prune_env  # noqa: F401

if __name__ == "__main__":
    envs = gym.make_vec("PruneEnv-v0", num_envs=2, vectorization_mode="async",
                        task="fashion-mnist-mlp", eval_samples=100)
    envs.reset(seed=0)
    episodes = 0
    for _ in range(5):  # two episodes of two steps in each copy, a reset step between them
        _, reward, terminated, _, info = envs.step(envs.action_space.sample())
        episodes += int(terminated.sum())
    envs.close()
    print(episodes, reward.tolist())
"""


def test_async_make_vec_returns_episodes_with_default_settings():
    """The default start method forks after the parent built an env (PyTorch multi-threaded
    there): without prune_env's at-fork hook the children hang at their first forward pass."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    run = subprocess.run([sys.executable, "-c", ASYNC], capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    episodes, rewards = run.stdout.split(" ", 1)
    assert int(episodes) == 4 and all(0.0 < r <= 1.0 for r in eval(rewards))
