"""ResNet with BasicBlocks (He et al., "Deep Residual Learning for Image Recognition", 2015).

One ``ResNet`` class builds both zoo variants:

- ``resnet18``: the canonical ImageNet layout, layers [2, 2, 2, 2], widths 64/128/256/512.
  ``small_input=True`` swaps the 7×7/2 stem and 3×3/2 max-pool (which shrink a 224² image 4×)
  for a single 3×3/1 conv, the usual CIFAR-style change that keeps 32² inputs from collapsing
  to 1² before the last stage.
- ``resnet_tiny``: layers [1, 1, 1, 1], widths 16/32/64/128 and the small-input stem; a few
  hundred thousand parameters, for quick experiments and microcontroller-sized targets.

Each stage after the first halves the resolution (stride 2 in its first block) and doubles the
width. The residual addition is written ``out + identity`` (not ``+=``) so no tensor that a hook
or an observer may hold is modified in place; for the same reason ReLUs are not in-place.
"""

from __future__ import annotations

import torch
from torch import nn

from modelpress.zoo._common import (
    check_positive_int,
    check_width_mult,
    init_weights,
    make_divisible,
)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """3×3 conv with padding 1 and no bias (the following BatchNorm has one)."""
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convs with a skip connection: out = relu(bn(conv(relu(bn(conv(x))))) + x)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu1 = nn.ReLU()
        self.conv2 = conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu2 = nn.ReLU()
        # When the block changes resolution or width, the skip needs a projection (1×1 conv, same
        # stride) to match shapes; otherwise it is the identity. Decided once, here, so forward
        # has no shape-dependent branching.
        self.downsample: nn.Module
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_ch),
            )
        else:
            self.downsample = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.downsample(x)  # (B, C_out, H/s, W/s)
        out = self.relu1(self.bn1(self.conv1(x)))  # (B, C_out, H/s, W/s)
        out = self.bn2(self.conv2(out))  # (B, C_out, H/s, W/s)
        return self.relu2(out + identity)


class ResNet(nn.Module):
    """Stem -> four stages of BasicBlocks -> global average pool -> linear classifier."""

    def __init__(
        self,
        layers: tuple[int, int, int, int],
        widths: tuple[int, int, int, int],
        num_classes: int,
        in_channels: int,
        small_input: bool,
    ) -> None:
        super().__init__()
        stem_ch = widths[0]
        if small_input:
            # (B, C, H, W) -> (B, w0, H, W): keep full resolution for 32²-class inputs.
            self.stem = nn.Sequential(
                conv3x3(in_channels, stem_ch),
                nn.BatchNorm2d(stem_ch),
                nn.ReLU(),
            )
        else:
            # (B, C, H, W) -> (B, w0, H/4, W/4): the ImageNet stem.
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, stem_ch, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(stem_ch),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            )

        # Stage i has `layers[i]` blocks of width `widths[i]`; all but the first stage start
        # with a stride-2 block.
        stages: list[nn.Module] = []
        in_ch = stem_ch
        for i, (num_blocks, width) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(in_ch, width, stride)]
            blocks += [BasicBlock(width, width) for _ in range(num_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            in_ch = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages

        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # S = H after the stem: H for small_input, H/4 otherwise.
        x = self.stem(x)  # (B, w0, S, S)
        x = self.layer1(x)  # (B, w0, S, S)
        x = self.layer2(x)  # (B, w1, S/2, S/2)
        x = self.layer3(x)  # (B, w2, S/4, S/4)
        x = self.layer4(x)  # (B, w3, S/8, S/8)
        x = self.pool(x)  # (B, w3, 1, 1)
        x = torch.flatten(x, 1)  # (B, w3)
        return self.fc(x)  # (B, num_classes)


def _widths(base: tuple[int, int, int, int], width_mult: float) -> tuple[int, int, int, int]:
    """Scale stage widths, rounded to multiples of 8 (unchanged at width_mult=1.0)."""
    w0, w1, w2, w3 = (make_divisible(w * width_mult) for w in base)
    return w0, w1, w2, w3


def resnet18(
    num_classes: int = 10,
    in_channels: int = 3,
    width_mult: float = 1.0,
    small_input: bool = False,
) -> ResNet:
    """ResNet-18; ~11.2M parameters at 10 classes."""
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    width_mult = check_width_mult(width_mult)
    widths = _widths((64, 128, 256, 512), width_mult)
    return ResNet((2, 2, 2, 2), widths, num_classes, in_channels, small_input=bool(small_input))


def resnet_tiny(
    num_classes: int = 10,
    in_channels: int = 3,
    width_mult: float = 1.0,
) -> ResNet:
    """A one-block-per-stage ResNet, widths 16/32/64/128, for small inputs (~0.3M parameters)."""
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    width_mult = check_width_mult(width_mult)
    widths = _widths((16, 32, 64, 128), width_mult)
    return ResNet((1, 1, 1, 1), widths, num_classes, in_channels, small_input=True)
