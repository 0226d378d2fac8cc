"""DS-CNN: a depthwise-separable CNN in the style of "Hello Edge" (Zhang et al., 2017).

Designed for keyword spotting on microcontrollers (input: a 1-channel spectrogram or MFCC map),
but equally usable on small images. A standard k×k conv costs k²·C_in·C_out multiply-adds per
pixel; splitting it into a depthwise k×k (k²·C) and a pointwise 1×1 (C·C) makes it ~k² = 9×
cheaper at equal width, which is what lets a 64-channel net fit a few tens of kB.

Layout (all widths equal to ``width``; 64 at width_mult=1.0):

    stem:    3×3/2 conv -> BN -> ReLU                 (B, C_in, H, W)    -> (B, w, H/2, W/2)
    blocks:  dw 3×3 -> BN -> ReLU -> pw 1×1 -> BN -> ReLU, stride 2 in the second block only
                                                      (B, w, H/2, W/2)   -> (B, w, H/4, W/4)
    head:    global average pool -> linear            (B, w, H/4, W/4)   -> (B, num_classes)
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


class DepthwiseSeparable(nn.Module):
    """Depthwise 3×3 (spatial mixing, per channel) then pointwise 1×1 (channel mixing)."""

    def __init__(self, channels: int, stride: int = 1) -> None:
        super().__init__()
        # groups=channels: each channel gets its own 3×3 filter; the stride lives here.
        self.dw = nn.Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False)
        self.dw_bn = nn.BatchNorm2d(channels)
        self.dw_relu = nn.ReLU()
        self.pw = nn.Conv2d(channels, channels, 1, bias=False)
        self.pw_bn = nn.BatchNorm2d(channels)
        self.pw_relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_relu(self.dw_bn(self.dw(x)))  # (B, C, H/s, W/s)
        return self.pw_relu(self.pw_bn(self.pw(x)))  # (B, C, H/s, W/s)


class DSCNN(nn.Module):
    """Stem conv -> ``num_blocks`` depthwise-separable blocks -> pool -> classifier."""

    def __init__(self, num_classes: int, in_channels: int, width: int, num_blocks: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        # Downsample once more in the second block: early enough to cut the cost of every later
        # block by 4×, late enough that the first block still sees the stem's resolution.
        self.blocks = nn.Sequential(
            *(DepthwiseSeparable(width, stride=2 if i == 1 else 1) for i in range(num_blocks))
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(width, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, w, H/2, W/2)
        x = self.blocks(x)  # (B, w, H/4, W/4) when num_blocks >= 2
        x = self.pool(x)  # (B, w, 1, 1)
        x = torch.flatten(x, 1)  # (B, w)
        return self.classifier(x)  # (B, num_classes)


def dscnn(
    num_classes: int = 10,
    in_channels: int = 1,
    width_mult: float = 1.0,
    num_blocks: int = 4,
) -> DSCNN:
    """DS-CNN with ``num_blocks`` blocks of width 64 × width_mult (rounded to a multiple of 8)."""
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    width_mult = check_width_mult(width_mult)
    check_positive_int("num_blocks", num_blocks)
    width = make_divisible(64 * width_mult)
    return DSCNN(num_classes, in_channels, width, num_blocks)
