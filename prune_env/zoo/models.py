"""Architectures of the task zoo.

Every model ends in a linear layer named ``classifier``, whose outputs are never pruned.

- ``LeNet300100``: the classic 784-300-100-10 MLP (LeCun et al. 1998; Han et al. 2015).
- ``FashionCNN``: a small VGG-style CNN with BatchNorm, sized so that an episode on two CPU
  cores takes well under a second.
- ``CifarVGG``: CIFAR-style VGG-11/16/19 with BatchNorm and a single 512-to-10 classifier.
- ``CifarResNet``: ResNet-18 (basic blocks, 3x3 stem, no max-pool) and ResNet-56 (3 stages of
  9 blocks). Down-sampling shortcuts are 1x1 convolutions with BatchNorm ("option B"); He et
  al.'s zero-padding shortcut of ResNet-56 ("option A") cannot be pruned structurally.
"""

from __future__ import annotations

import torch
from torch import nn


class LeNet300100(nn.Module):
    def __init__(self, num_classes: int = 10, in_features: int = 784):
        super().__init__()
        self.fc1 = nn.Linear(in_features, 300)
        self.fc2 = nn.Linear(300, 100)
        self.classifier = nn.Linear(100, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.classifier(x)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class FashionCNN(nn.Module):
    """Five 3x3 conv-BN-ReLU layers in three pooled stages (16-16 | 32-32 | 64), then 576-128-10.

    ``width`` scales every hidden width (x0.5: 8-8 | 16-16 | 32, then 288-64-10), the width axis
    of the task family; the default keeps the shipped checkpoint's shapes.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: float = 1.0):
        super().__init__()
        c1, c2, c3, hidden = (max(1, round(w * width)) for w in (16, 32, 64, 128))
        self.features = nn.Sequential(
            *_conv_bn_relu(in_channels, c1),
            *_conv_bn_relu(c1, c1),
            nn.MaxPool2d(2),
            *_conv_bn_relu(c1, c2),
            *_conv_bn_relu(c2, c2),
            nn.MaxPool2d(2),
            *_conv_bn_relu(c2, c3),
            nn.MaxPool2d(2),
        )
        self.fc = nn.Linear(c3 * 3 * 3, hidden)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.features(x), 1)
        return self.classifier(torch.relu(self.fc(x)))


VGG_CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}  # fmt: skip


class CifarVGG(nn.Module):
    def __init__(self, depth: int = 16, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        if depth not in VGG_CONFIGS:
            raise ValueError(f"VGG depth must be one of {sorted(VGG_CONFIGS)}, got {depth}")
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG_CONFIGS[depth]:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += _conv_bn_relu(channels, int(item))
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, blocks: list[int], widths: list[int], num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages = []
        cin = widths[0]
        for i, (count, width) in enumerate(zip(blocks, widths)):
            stride = 1 if i == 0 else 2
            stage = [BasicBlock(cin, width, stride)] + [BasicBlock(width, width) for _ in range(count - 1)]
            stages.append(nn.Sequential(*stage))
            cin = width
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.layers(x))
        return self.classifier(torch.flatten(x, 1))


def resnet18(num_classes: int = 10) -> CifarResNet:
    return CifarResNet([2, 2, 2, 2], [64, 128, 256, 512], num_classes)


def resnet20(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """He et al.'s CIFAR ResNet-20 (3 stages of 3 basic blocks, 16/32/64 channels)."""
    return CifarResNet([3, 3, 3], [16, 32, 64], num_classes, in_channels)


def resnet8(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """The shallowest of He et al.'s CIFAR family: one basic block per stage."""
    return CifarResNet([1, 1, 1], [16, 32, 64], num_classes, in_channels)


def resnet14(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """Two basic blocks per stage."""
    return CifarResNet([2, 2, 2], [16, 32, 64], num_classes, in_channels)


def resnet56(num_classes: int = 10) -> CifarResNet:
    return CifarResNet([9, 9, 9], [16, 32, 64], num_classes)
