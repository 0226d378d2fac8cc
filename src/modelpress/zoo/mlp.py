"""A multi-layer perceptron for tabular / feature-vector inputs.

Input (B, F) with F = ``in_channels`` features; anything with more dimensions is flattened to
(B, F) first, so a (B, 1, F) or (B, C, H, W) tensor works as long as its per-sample size is F.
Each hidden layer is Linear -> ReLU -> Dropout; the last Linear produces logits (no softmax:
losses and metrics apply their own).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from modelpress.errors import ModelSourceError
from modelpress.zoo._common import check_dropout, check_positive_int, init_weights


class MLP(nn.Module):
    """flatten -> [Linear -> ReLU -> Dropout] × len(hidden) -> Linear."""

    def __init__(
        self, num_classes: int, in_features: int, hidden: tuple[int, ...], dropout: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (B, F)
        return self.net(x)  # (B, num_classes)


def mlp(
    num_classes: int = 10,
    in_channels: int = 30,
    hidden: Sequence[int] = (128, 64),
    dropout: float = 0.1,
) -> MLP:
    """MLP over ``in_channels`` input features with the given hidden widths (tuple or list)."""
    check_positive_int("num_classes", num_classes)
    check_positive_int("in_channels", in_channels)
    # A bare int or a string is a Sequence-shaped mistake, not a list of widths.
    if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence):
        raise ModelSourceError(f"hidden must be a tuple or list of layer widths, got {hidden!r}")
    widths = tuple(check_positive_int("hidden width", h) for h in hidden)
    dropout = check_dropout(dropout)
    return MLP(num_classes, in_channels, widths, dropout)
