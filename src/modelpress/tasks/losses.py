"""Knowledge-distillation loss math (Hinton et al. 2015), for the tasks' ``kd_loss``.

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

import torch
import torch.nn.functional as F


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
