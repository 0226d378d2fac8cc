"""A user's own MobileNetV3-style CNN for 32×32 inputs, written the way users write them.

Inverted residual blocks (expand 1×1 → depthwise → squeeze-excite with a hard-sigmoid gate →
project 1×1), hard-swish activations, residual adds where shape allows, a 1×1 head and global
average pooling: about 150 K parameters. It is not in the zoo on purpose: the quantization
benchmark loads it as ``benchmarks/models/se_cnn.py:se_cnn``, the path any user's own file
takes.
"""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(reduced, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, expanded: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, expanded, 1, bias=False),
            nn.BatchNorm2d(expanded),
            nn.Hardswish(),
            nn.Conv2d(expanded, expanded, kernel, stride, kernel // 2, groups=expanded, bias=False),
            nn.BatchNorm2d(expanded),
            nn.Hardswish(),
            SqueezeExcite(expanded, expanded // 4),
            nn.Conv2d(expanded, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class SeCnn(nn.Module):
    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish()
        )
        self.blocks = nn.Sequential(
            InvertedResidual(16, 64, 24, 3, 2),  # 32² → 16²
            InvertedResidual(24, 96, 24, 3, 1),
            InvertedResidual(24, 96, 40, 5, 2),  # → 8²
            InvertedResidual(40, 160, 40, 5, 1),
            InvertedResidual(40, 240, 48, 5, 1),
        )
        self.head = nn.Sequential(
            nn.Conv2d(48, 384, 1, bias=False),
            nn.BatchNorm2d(384),
            nn.Hardswish(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(384, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def se_cnn(num_classes: int = 10, in_channels: int = 3) -> SeCnn:
    return SeCnn(num_classes, in_channels)
