"""Distillation as a training loss (``DistillLoss``: hard + soft + feature terms) and the α
schedule. The hard + soft math is the task's (``Task.kd_loss``, ``tasks/losses.py``): CE + T² · KL
of softened softmaxes for classes, BCE + T² · Bernoulli KL for a one-logit binary head.
Plain distillation sets ``w_hard = α, w_soft = 1 − α``; QAT with a teacher uses independent
weights (0.3 / 0.7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from modelpress.sources.models import first_tensor
from modelpress.training import Callback

if TYPE_CHECKING:
    from modelpress.tasks.base import Task


def alpha_at(epoch: int, start: float, end: float, epochs: int) -> float:
    """Progressive α: linear from ``start`` (epoch 0) to ``end`` (epoch ``epochs − 1``), then
    held at ``end``."""
    if epochs <= 1:
        return end
    return start + (end - start) * min(epoch / (epochs - 1), 1.0)


class DistillLoss(nn.Module):
    """A training loss (``fit``'s ``loss_fn``): hard + soft (teacher) + feature terms.

    The teacher is held outside the module's parameters (never trained, never saved with the
    loss); the feature projections are parameters, so ``fit`` trains and checkpoints them."""

    def __init__(
        self,
        teacher: nn.Module,
        task: Task,
        temperature: float,
        hard_weight: float,
        soft_weight: float,
        features: nn.Module | None = None,  # a FeatureDistiller
        standardize: bool = False,  # z-score logits before the soft loss (multi-class only)
    ) -> None:
        super().__init__()
        self._teacher = [teacher]  # a list: not a submodule
        self.task = task
        self.temperature = temperature
        self.hard_weight, self.soft_weight = hard_weight, soft_weight
        self.features = features
        self.standardize = standardize
        self._cache: tuple[Any, torch.Tensor] | None = None

    def teacher_logits(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        key = (inputs[0].data_ptr(), tuple(inputs[0].shape))  # SAM's second pass: same batch
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, first_tensor(self._teacher[0](*inputs)).detach())
        return self._cache[1]

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, inputs: list[torch.Tensor]
    ) -> torch.Tensor:
        teacher = self.teacher_logits(inputs)
        s, t = outputs.reshape(len(outputs), -1), teacher.reshape(len(teacher), -1)
        loss = self.task.kd_loss(
            s,
            t,
            labels,
            temperature=self.temperature,
            hard_weight=self.hard_weight,
            soft_weight=self.soft_weight,
            standardize=self.standardize,
        )
        if self.features is not None:
            loss = loss + self.features.loss()
        return loss


class AlphaSchedule(Callback):
    """Sets the loss's hard/soft weights to α / 1 − α at each epoch's start."""

    def __init__(self, loss: DistillLoss, start: float, end: float, epochs: int) -> None:
        self.loss, self.start, self.end, self.epochs = loss, start, end, epochs

    def on_epoch_start(self, epoch: int, model: nn.Module) -> dict[str, Any]:
        alpha = alpha_at(epoch, self.start, self.end, self.epochs)
        self.loss.hard_weight, self.loss.soft_weight = alpha, 1.0 - alpha
        return {"alpha": round(alpha, 6)}
