"""Small helpers shared by the zoo models: argument checks, channel rounding, weight init.

Kept here so each model file can stay a straight top-to-bottom read of its architecture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from modelpress.errors import ModelSourceError


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` if it is an int ``>= minimum``, else raise a one-line ModelSourceError."""
    # bool is a subclass of int; `num_classes=True` is a bug, not "one class".
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ModelSourceError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_width_mult(value: object) -> float:
    """Return ``value`` as a float if it is a number > 0, else raise a one-line ModelSourceError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ModelSourceError(f"width_mult must be a number > 0, got {value!r}")
    return float(value)


def check_dropout(value: object) -> float:
    """Return ``value`` as a float if it is a probability in [0, 1), else raise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ModelSourceError(f"dropout must be a number in [0, 1), got {value!r}")
    return float(value)


def check_input_size(value: object) -> tuple[int, int]:
    """``input_size`` as (H, W): an int >= 4 or a pair of them, else a one-line ModelSourceError."""
    sizes = list(value) if isinstance(value, list | tuple) else [value, value]
    if len(sizes) != 2 or any(
        not isinstance(v, int) or isinstance(v, bool) or v < 4 for v in sizes
    ):
        raise ModelSourceError(f"input_size must be an integer >= 4 or [H, W], got {value!r}")
    return sizes[0], sizes[1]


class InputResize(nn.Module):
    """Runs ``model`` at a fixed input resolution: whatever H×W arrives is resized (bilinear)
    to ``size`` first, inside the model, so every export and runtime sees the same graph.

    This is how a student is made cheaper by resolution as well as width: MACs fall with the
    square of the side.
    """

    def __init__(self, model: nn.Module, size: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return self.model(x)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor`` (the MobileNet rule).

    Multiples of 8 keep channel counts friendly to SIMD lanes and int8 kernels. Rounding never
    goes more than 10% below ``value``, so thin width multipliers do not silently lose capacity.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def init_weights(model: nn.Module) -> None:
    """Standard init: Kaiming for convs, BN as identity, small normal for linear layers."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            # fan_out keeps activation variance stable through ReLU-family nets (He et al. 2015).
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
