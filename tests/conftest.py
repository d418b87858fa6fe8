"""Shared fixtures: small user models and data, and environments built once per session."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import prune_env  # noqa: F401  (registers PruneEnv-v0)


class ResidualNet(nn.Module):
    """A user model with a residual add: conv -> (conv, conv) + skip -> linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 12, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(12)
        self.conv2 = nn.Conv2d(12, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.head = nn.Linear(8 * 4 * 4, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        x = torch.relu(self.bn0(self.stem(x)))
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        x = torch.relu(x + y)
        x = nn.functional.adaptive_avg_pool2d(x, 4)
        return self.out(torch.relu(self.head(torch.flatten(x, 1))))


class ConcatFlattenNet(nn.Module):
    """Concat, then flatten, then Linear: a topology torch-pruning 1.6 mis-prunes."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(torch.flatten(torch.cat([self.a(x), self.b(x)], 1), 1))


def conv_linear_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of the conv and linear layers, counted from the shapes they see:
    an independent check of the analytic estimate's MAC ratio."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        else:
            per_output = module.in_features
        total += output.numel() * per_output

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give BatchNorm layers non-trivial statistics, so masking bugs cannot hide behind 0/1."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


@pytest.fixture
def residual_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=g)
    y = torch.randint(0, 3, (64,), generator=g)
    return x, y


@pytest.fixture
def residual_model():
    torch.manual_seed(0)
    return randomize_batchnorm(ResidualNet())


@pytest.fixture(scope="session")
def mlp_env():
    return gym.make("PruneEnv-v0", task="fashion-mnist-mlp", eval_samples=200).unwrapped


@pytest.fixture
def mlp_problem(mlp_env):
    """The pruning instance behind ``mlp_env`` (scores masks without the MDP)."""
    return mlp_env.problem


def random_trace(env, seed: int, episodes: int = 1) -> list:
    """Every observation, reward and cost of ``episodes`` episodes of seeded random actions (the
    env reset with seed, seed + 1, ...): two runs to compare for determinism."""
    env.action_space.seed(seed)
    trace = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        trace.append(obs)
        done = False
        while not done:
            obs, reward, done, _, info = env.step(env.action_space.sample())
            trace += [obs, np.array([reward, info["cost"]])]
    return trace


def run_episode(env, actions):
    """Step through one episode with the given actions; return every step's result."""
    results = []
    for action in actions:
        results.append(env.step(action))
    return results


@pytest.fixture(scope="session")
def mlp_table(tmp_path_factory):
    """A small table built from the live MLP task (4 levels x 2 groups = 16 cells, no final
    fine-tune sample), so the tabulated env is checked against the env it tabulates."""
    from prune_env.app.tables import build_table

    out = tmp_path_factory.mktemp("tables") / "mlp.npz"
    table = build_table("fashion-mnist-mlp", levels=4, out=out, final_sample=0, progress=False)
    assert table is not None
    return table
