"""MobileNetV3-Small (Howard et al., "Searching for MobileNetV3", 2019, Table 2).

The network is a 3×3/2 stem followed by eleven inverted-residual "bneck" blocks and a small
head. Each bneck block is:

    expand 1×1 (C_in -> C_exp) -> depthwise k×k (stride s) -> [squeeze-excite] -> project 1×1

with a residual connection when the block keeps both resolution and width. The paper's search
picked ReLU for the early, high-resolution blocks (cheap) and hard-swish for the later ones
(accurate); hard-swish and hard-sigmoid are piecewise-linear stand-ins for swish and sigmoid that
quantize well.

Activations are modules (nn.Hardswish, nn.Hardsigmoid, nn.ReLU), not functional calls, so that
quantizers, fusers and exporters that walk the module tree see every one of them. No activation
is in-place: calibration hooks that keep a reference to a layer's input would otherwise see it
overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from modelpress.zoo._common import (
    check_dropout,
    check_positive_int,
    check_width_mult,
    init_weights,
    make_divisible,
)

# eps=1e-3 as in the reference (TF) implementation. Its momentum of 0.01 suits ImageNet-length
# schedules only: after a few short epochs (distilling on digits, fine-tuning after pruning) the
# running statistics are still far from the data and the eval-mode model outputs a constant.
# PyTorch's default 0.1 tracks them within a few dozen steps.
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.1


@dataclass(frozen=True)
class BneckConfig:
    """One row of the paper's Table 2 (channel counts at width_mult=1.0)."""

    kernel: int  # depthwise kernel size
    expanded: int  # C_exp: width inside the block
    out: int  # C_out
    use_se: bool  # squeeze-and-excite after the depthwise conv
    activation: str  # "RE" (ReLU) or "HS" (hard-swish)
    stride: int  # stride of the depthwise conv


# MobileNetV3-Small, Table 2. The stem produces 16 channels, which is the first block's input.
SMALL_CONFIG: tuple[BneckConfig, ...] = (
    BneckConfig(3, 16, 16, True, "RE", 2),  # 112² -> 56² at 224 input
    BneckConfig(3, 72, 24, False, "RE", 2),  # -> 28²
    BneckConfig(3, 88, 24, False, "RE", 1),
    BneckConfig(5, 96, 40, True, "HS", 2),  # -> 14²
    BneckConfig(5, 240, 40, True, "HS", 1),
    BneckConfig(5, 240, 40, True, "HS", 1),
    BneckConfig(5, 120, 48, True, "HS", 1),
    BneckConfig(5, 144, 48, True, "HS", 1),
    BneckConfig(5, 288, 96, True, "HS", 2),  # -> 7²
    BneckConfig(5, 576, 96, True, "HS", 1),
    BneckConfig(5, 576, 96, True, "HS", 1),
)
STEM_CHANNELS = 16
HEAD_CHANNELS = 1024  # width of the pooled fully-connected layer before the classifier


def _activation(kind: str) -> nn.Module:
    return nn.Hardswish() if kind == "HS" else nn.ReLU()


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias: BN supplies it) -> BatchNorm2d -> optional activation."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        activation: nn.Module | None = None,
    ) -> None:
        layers: list[nn.Module] = [
            # padding k//2 keeps the spatial size at stride 1 and halves it (rounding up) at 2.
            nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch, eps=_BN_EPS, momentum=_BN_MOMENTUM),
        ]
        if activation is not None:
            layers.append(activation)
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: pool to one value per channel, squeeze 4×, excite back, rescale.

    1×1 convs instead of Linear layers keep the tensor 4-D, so no reshapes are needed and the
    block stays a plain chain of conv ops for exporters.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = make_divisible(channels // 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.pool(x)  # (B, C, 1, 1)
        s = self.relu(self.fc1(s))  # (B, C/4, 1, 1)
        s = self.gate(self.fc2(s))  # (B, C, 1, 1), each in [0, 1]
        return x * s  # (B, C, H, W), broadcast over H and W


class InvertedResidual(nn.Module):
    """One bneck block: expand -> depthwise -> [SE] -> project (linear), plus optional skip."""

    def __init__(self, in_ch: int, cfg: BneckConfig, width_mult: float) -> None:
        super().__init__()
        expanded = make_divisible(cfg.expanded * width_mult)
        out_ch = make_divisible(cfg.out * width_mult)
        # The skip only applies when input and output tensors have the same shape.
        self.use_residual = cfg.stride == 1 and in_ch == out_ch

        layers: list[nn.Module] = []
        # The first block has C_exp == C_in: the paper drops the (identity-sized) expand conv.
        if expanded != in_ch:
            layers.append(ConvBNAct(in_ch, expanded, 1, activation=_activation(cfg.activation)))
        # Depthwise: one k×k filter per channel (groups == channels), carries all the stride.
        layers.append(
            ConvBNAct(
                expanded,
                expanded,
                cfg.kernel,
                stride=cfg.stride,
                groups=expanded,
                activation=_activation(cfg.activation),
            )
        )
        if cfg.use_se:
            layers.append(SqueezeExcite(expanded))
        # Project back down with no activation: a non-linearity on the narrow tensor would
        # destroy information (the "linear bottleneck" argument of MobileNetV2).
        layers.append(ConvBNAct(expanded, out_ch, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)  # (B, C_out, H/s, W/s)
        # `use_residual` is fixed at construction, so this branch is not data-dependent.
        if self.use_residual:
            out = out + x
        return out


class MobileNetV3(nn.Module):
    """MobileNetV3 backbone + head. Input (B, in_channels, H, W), output logits (B, classes)."""

    def __init__(
        self,
        config: tuple[BneckConfig, ...],
        num_classes: int,
        in_channels: int,
        width_mult: float,
        dropout: float,
    ) -> None:
        super().__init__()
        stem_ch = make_divisible(STEM_CHANNELS * width_mult)
        # Stem: full 3×3 conv at stride 2, hard-swish.
        self.stem = ConvBNAct(in_channels, stem_ch, 3, stride=2, activation=nn.Hardswish())

        blocks: list[nn.Module] = []
        ch = stem_ch
        for cfg in config:
            block = InvertedResidual(ch, cfg, width_mult)
            blocks.append(block)
            ch = block.out_channels
        self.blocks = nn.Sequential(*blocks)

        # Last conv: widen 6× at the lowest resolution (576 channels at width 1.0).
        last_conv_ch = 6 * ch
        self.last_conv = ConvBNAct(ch, last_conv_ch, 1, activation=nn.Hardswish())
        self.pool = nn.AdaptiveAvgPool2d(1)

        # The head stays 1024 wide for width_mult <= 1 (as in the paper's reference code): it is
        # applied once per image, so thinning it saves little compute and costs accuracy.
        head_ch = make_divisible(HEAD_CHANNELS * max(1.0, width_mult))
        self.classifier = nn.Sequential(
            nn.Linear(last_conv_ch, head_ch),
            nn.Hardswish(),
            nn.Dropout(dropout),
            nn.Linear(head_ch, num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channel counts in the comments are at width_mult=1.0.
        x = self.stem(x)  # (B, 16, H/2, W/2)
        x = self.blocks(x)  # (B, 96, H/32, W/32)
        x = self.last_conv(x)  # (B, 576, H/32, W/32)
        x = self.pool(x)  # (B, 576, 1, 1)
        x = torch.flatten(x, 1)  # (B, 576)
        return self.classifier(x)  # (B, num_classes)


def mobilenetv3_small(
    num_classes: int = 10,
    in_channels: int = 3,
    width_mult: float = 1.0,
    dropout: float = 0.2,
) -> MobileNetV3:
    """MobileNetV3-Small; ~2.5M parameters at 1000 classes, ~1.5M at 10 classes."""
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    width_mult = check_width_mult(width_mult)
    dropout = check_dropout(dropout)
    return MobileNetV3(SMALL_CONFIG, num_classes, in_channels, width_mult, dropout)
