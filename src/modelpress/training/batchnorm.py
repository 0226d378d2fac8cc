"""Precise BatchNorm: running statistics re-estimated under the final weights of an epoch."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class _Unpacked(nn.Module):
    """``model`` called with the list of inputs ``swa_utils.update_bn`` hands over as one."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: list[torch.Tensor]) -> Any:
        return self.model(*inputs)


def recalibrate_batchnorm(
    model: nn.Module, inputs: list[torch.Tensor], batch_size: int, max_samples: int
) -> bool:
    """Precise BatchNorm (Wu & Johnson, "Rethinking BatchNorm", 2021): replace the running
    mean/var, an exponential average over weights that kept changing, with the plain average
    over up to ``max_samples`` training samples under the current weights. After a short
    schedule (few hundred samples) the running averages still sit near their initial values and
    an eval-mode model scores at chance while its train-mode twin does fine. Returns whether the
    model had BatchNorm to recalibrate."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return False
    n = min(len(inputs[0]), max_samples)
    n = n - n % batch_size if n >= batch_size else n  # equal batches: each counts the same
    if n < 2:
        return False
    batches = ([[a[i : i + batch_size] for a in inputs]] for i in range(0, n, batch_size))
    with torch.no_grad():
        # update_bn puts back the wrapper's mode: give it the model's
        torch.optim.swa_utils.update_bn(batches, _Unpacked(model).train(model.training))
    return True
