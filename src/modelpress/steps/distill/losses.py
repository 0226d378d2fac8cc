"""Knowledge-distillation losses (Hinton et al. 2015) and the α schedule.

Multi-class: ``w_hard · CE(s, y) + w_soft · T² · KL(p_t ‖ p_s)`` with ``p = softmax(logits / T)``,
the KL that ``F.kl_div(log p_s, p_t)`` computes (averaged over the batch). T² keeps the soft
gradients on the scale of the hard ones as T grows. Plain distillation sets
``w_hard = α, w_soft = 1 − α``; QAT with a teacher uses independent weights (0.3 / 0.7).
Binary (one logit, as in real-vs-fake detectors): BCE on the labels plus T² · the Bernoulli KL
between ``σ(t / T)`` and ``σ(s / T)``.

Logit standardization (Sun et al., "Logit Standardization in Knowledge Distillation", CVPR 2024;
``standardize``): both logit vectors are z-scored per sample before the softened softmax, so the
student matches the teacher's *relations* between classes, not the scale of its logits. Without
it a small student from random weights must first grow logits as large as a confident teacher's
(margin ≈ 10 on digits) and, on a short schedule, loses to the same student trained on labels:
dscnn from resnet18 at T 4, α 0.3, 6 epochs: 0.53 top-1 plain, 0.87 standardized, 0.79 scratch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from modelpress.sources.models import first_tensor
from modelpress.training import Callback


def standardized(logits: torch.Tensor) -> torch.Tensor:
    """(B, K) logits z-scored per sample (zero mean, unit standard deviation over K)."""
    mean = logits.mean(dim=-1, keepdim=True)
    return (logits - mean) / (logits.std(dim=-1, keepdim=True) + 1e-7)


def kd_loss(
    student: torch.Tensor,  # (B, K) logits
    teacher: torch.Tensor,  # (B, K) logits
    labels: torch.Tensor,  # (B,) class ids
    temperature: float,
    hard_weight: float,
    soft_weight: float,
    standardize: bool = False,
) -> torch.Tensor:
    t = temperature
    hard = F.cross_entropy(student, labels)
    if standardize:  # the hard loss keeps the raw logits: they are what the model outputs
        student, teacher = standardized(student), standardized(teacher)
    soft = F.kl_div(
        F.log_softmax(student / t, dim=-1),
        F.log_softmax(teacher / t, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    return hard_weight * hard + soft_weight * t * t * soft


def binary_kd_loss(
    student: torch.Tensor,  # (B,) or (B, 1) logits
    teacher: torch.Tensor,
    labels: torch.Tensor,  # (B,) 0/1
    temperature: float,
    hard_weight: float,
    soft_weight: float,
) -> torch.Tensor:
    t = temperature
    s, te = student.reshape(-1), teacher.reshape(-1)
    hard = F.binary_cross_entropy_with_logits(s, labels.float())
    p_t = torch.sigmoid(te / t)
    # KL(Bern(p_t) ‖ Bern(p_s)) = BCE(s/T → p_t) − H(p_t); both terms in the stable logit form
    soft = F.binary_cross_entropy_with_logits(s / t, p_t) - F.binary_cross_entropy_with_logits(
        te / t, p_t
    )
    return hard_weight * hard + soft_weight * t * t * soft


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
        task: str,
        temperature: float,
        hard_weight: float,
        soft_weight: float,
        features: nn.Module | None = None,  # a FeatureDistiller
        standardize: bool = False,  # z-score logits before the soft loss (multi-class only)
    ) -> None:
        super().__init__()
        self._teacher = [teacher]  # a list: not a submodule
        self.binary = task == "binary"
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
        if self.binary and s.shape[1] == 1:
            loss = binary_kd_loss(
                s, t, labels, self.temperature, self.hard_weight, self.soft_weight
            )
        else:
            loss = kd_loss(
                s,
                t,
                labels,
                self.temperature,
                self.hard_weight,
                self.soft_weight,
                self.standardize,
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
