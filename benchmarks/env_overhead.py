"""What does an episode cost beyond scoring? Episode time over one dense forward pass.

    python benchmarks/env_overhead.py [--repeats 5] [--threads 2] [--networks mlp vgg16 resnet18 resnet56]

An episode of PruneEnv-v0 (ratio mode, every group at the same keep-ratio) exports the pruned
network, proves it equal to the masked one, measures the budget and scores it on the
validation inputs; the scoring forward pass is the part that cannot go. Printed per network:
the median episode time at keep-all and at keep 0.3, each divided by the median time of one
dense forward pass over the same inputs (1.0 would be scoring alone). Networks: the shipped
fashion-mnist-mlp with 1000 validation images, and random-weight CIFAR VGG-16, ResNet-18 and
ResNet-56 on 64 random 32x32 inputs. Budget values are cached by kept widths, as in training: the
repeated episodes of a column measure them once (in the warm-up).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.entrypoint import run_script
from prune_env.env import PruneEnv
from prune_env.zoo import models

CIFAR = {"vgg16": lambda: models.CifarVGG(16), "resnet18": models.resnet18, "resnet56": models.resnet56}


def make_env(network: str) -> PruneEnv:
    if network == "mlp":
        return PruneEnv("fashion-mnist-mlp", action_mode="ratio", eval_samples=1000, budget_limit=1.0)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (64,), generator=generator)
    torch.manual_seed(0)
    model = CIFAR[network]().eval()
    return PruneEnv(
        model=model, eval_data=(inputs, labels), eval_samples=64, action_mode="ratio", budget_limit=1.0
    )


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def episode(env: PruneEnv, ratio: float) -> None:
    env.reset(seed=0)
    done = False
    while not done:
        _, _, done, _, _ = env.step([ratio])


def overhead(network: str, repeats: int) -> dict:
    env = make_env(network)

    def dense_forward():
        with torch.inference_mode():
            env.problem.model(env.problem.eval_inputs)

    forward = median_seconds(dense_forward, repeats)
    return {
        "network": network,
        "groups": env.num_groups,
        "forward_ms": 1000 * forward,
        "keep_all": median_seconds(lambda: episode(env, 1.0), repeats) / forward,
        "keep_0.3": median_seconds(lambda: episode(env, 0.3), repeats) / forward,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--networks", nargs="+", default=["mlp", "vgg16", "resnet18", "resnet56"], choices=["mlp", *CIFAR]
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}")
    print("| network | groups | dense forward (ms) | episode / forward, keep-all | keep 0.3 |")
    print("|---|---|---|---|---|")
    for network in args.networks:
        r = overhead(network, args.repeats)
        print(
            f"| {r['network']} | {r['groups']} | {r['forward_ms']:.1f} | {r['keep_all']:.2f}x | {r['keep_0.3']:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    run_script(main)
