"""Your own model and data, and a black-box latency budget measured by your own function.

python examples/custom_model_and_budget.py [--episodes 20]
"""

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

import prune_env


class TinyResNet(nn.Module):
    """A user network with a residual connection (any Conv/Linear/BatchNorm model works)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 10)
        )

    def forward(self, x):
        x = self.stem(x)
        return self.head(torch.relu(x + self.block(x)))


def cpu_latency_ms(model: nn.Module) -> float:
    """The black box: median wall time (ms) of one batch of 32 images on this CPU."""
    x = torch.randn(32, 1, 28, 28)
    times = []
    with torch.inference_mode():
        model(x)
        for _ in range(7):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


parser = argparse.ArgumentParser()
parser.add_argument("--episodes", type=int, default=20)
parser.add_argument("--train-steps", type=int, default=300)
args = parser.parse_args()

# Your data: here a slice of Fashion-MNIST standing in for it.
data = prune_env.load_dataset("fashion-mnist")
train_x, train_y = data.train.tensors(10_000)
val = data.val.tensors(1000)

torch.manual_seed(0)
model = TinyResNet()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
for _ in range(args.train_steps):  # a quick training, so that pruning has something to lose
    idx = torch.randint(0, len(train_y), (128,))
    loss = nn.functional.cross_entropy(model(train_x[idx]), train_y[idx])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
model.eval()

dense_ms = cpu_latency_ms(model)
env = prune_env.PruneEnv(
    model=model, eval_data=val, budget=[cpu_latency_ms, "params"], budget_limit=[0.6 * dense_ms, 1.0]
)
print(env, f"- dense latency {dense_ms:.2f} ms, limit {0.6 * dense_ms:.2f} ms")
print("groups:", [(g.name, g.width, g.layers) for g in env.groups])

rng = np.random.default_rng(0)
best = None
for episode in range(args.episodes):
    env.reset(seed=episode)
    keep_fraction = rng.uniform(0.2, 0.9)  # a random search over uniform keep fractions
    for _ in range(env.num_groups):
        action = (rng.random(env.max_units) < keep_fraction).astype(np.int8)
        _, reward, done, _, info = env.step(action)
    ms, params = info["costs"]
    print(
        f"episode {episode:2d}: keep ~{keep_fraction:.2f}: accuracy {reward:.3f}, latency {ms:.2f} ms, params ratio {params:.2f}"
    )
    if info["constraint_satisfied"] and (best is None or reward > best[0]):
        best = (reward, info["masks"])
if best:
    smaller = env.problem.export(best[1])
    print(
        f"best within {0.6 * dense_ms:.2f} ms: accuracy {best[0]:.3f}, measured again {cpu_latency_ms(smaller):.2f} ms"
    )
