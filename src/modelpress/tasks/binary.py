"""``binary``: labels 0 and 1 from one logit (sigmoid) or two (softmax), judged by ROC AUC."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.errors import DataSourceError, ModelSourceError
from modelpress.evaluate.metrics import (
    binary_metrics,
    decision_metrics,
    log_odds,
    positive_scores,
    roc_auc,
)
from modelpress.tasks import register_task
from modelpress.tasks.base import Chance, LossFn, Outputs, chance_margin, output_width
from modelpress.tasks.classification import Classification

if TYPE_CHECKING:
    import torch

    from modelpress.sources.data import Dataset


def _one_logit(outputs: torch.Tensor) -> bool:
    return outputs.reshape(len(outputs), -1).shape[1] == 1


@register_task
class Binary(Classification):
    name = "binary"
    primary = "auc"
    plots = ()
    threshold = 0.5  # P(positive) at or above which a sample is predicted positive

    # ------------------------------------------------------------------ labels
    def _check_classes(self, classes: np.ndarray, data: Dataset) -> None:
        if classes.max() > 1:
            raise DataSourceError(
                f"{data.source}: labels run 0..{classes.max()} ({len(classes)} classes) but task "
                "binary takes labels 0 and 1; use task: classification, or relabel"
            )

    def _one_class_split(self, name: str, what: str, data: Dataset) -> None:
        if name == "validation":  # AUC does not exist there
            raise DataSourceError(
                f"{what}; AUC needs samples of both classes 0 and 1 there: add samples of the "
                "other class, or change data.seed / data.splits"
            )
        super()._one_class_split(name, what, data)

    # ------------------------------------------------------------------ outputs
    def check_outputs(self, shapes: list[tuple[int, ...]], data: Dataset, source: str) -> None:
        shape = shapes[0]
        width = output_width(shape)
        if width not in (1, 2):
            raise ModelSourceError(
                f"{source} outputs {width} values per sample but task binary takes 1 (a logit) "
                "or 2 (two class logits); give the model 1 or 2 outputs (num_classes in "
                "model_kwargs), or use task: classification"
            )

    # ------------------------------------------------------------------ measuring
    def _scores(self, outputs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        """auc, and f1, precision, recall, accuracy at ``threshold``."""
        return binary_metrics(outputs, labels, self.threshold)

    def chance(self, labels: np.ndarray | None, reference: Outputs | None = None) -> Chance | None:
        """ROC AUC 0.5: scores that do not depend on the input (one class for everything
        included) rank a positive above a negative half the time. Its noise on this split is the
        Mann-Whitney standard error under no signal, √((n₀ + n₁ + 1) / (12 n₀ n₁))."""
        if labels is None:
            return None
        n1 = int((labels == 1).sum())
        n0 = len(labels) - n1
        if not n0 or not n1:
            return None  # AUC does not exist (check_labels refuses such a split)
        sigma = math.sqrt((n0 + n1 + 1) / (12 * n0 * n1))
        return Chance(
            self.primary,
            0.5,
            chance_margin(0.5, 1.0, sigma),
            f"ROC AUC of scores blind to the input, over {n0} negatives and {n1} positives",
        )

    # ------------------------------------------------------------------ training
    def loss(self, label_smoothing: float = 0.0) -> LossFn:
        """BCE-with-logits for a one-logit head; cross-entropy for two logits."""
        from torch import nn

        ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        bce = nn.BCEWithLogitsLoss()

        def loss(outputs: torch.Tensor, labels: Any, inputs: list[torch.Tensor]) -> torch.Tensor:
            if _one_logit(outputs):
                return bce(outputs.reshape(-1), labels.float())
            return ce(outputs.reshape(len(outputs), -1), labels)

        return loss

    def kd_loss(
        self,
        student: torch.Tensor,
        teacher: torch.Tensor,
        labels: Any,
        *,
        temperature: float,
        hard_weight: float,
        soft_weight: float,
        standardize: bool = False,
    ) -> torch.Tensor:
        """One logit: BCE on the labels + T² · the Bernoulli KL of the softened sigmoids (no
        standardizing: one value has no spread); two logits: as classification."""
        if not _one_logit(student):
            return super().kd_loss(
                student,
                teacher,
                labels,
                temperature=temperature,
                hard_weight=hard_weight,
                soft_weight=soft_weight,
                standardize=standardize,
            )
        from modelpress.tasks.losses import binary_kd_loss

        return binary_kd_loss(student, teacher, labels, temperature, hard_weight, soft_weight)

    # ------------------------------------------------------------------ deployment
    cascade_exit = "thresholds"

    def cascade_scores(self, outputs: Outputs) -> np.ndarray:
        """(N,) the log-odds of the positive class: the one logit, or z1 − z0 of two."""
        try:
            return log_odds(self.postprocess(outputs))
        except ValueError as e:
            raise ModelSourceError(
                f"a binary cascade stage gives {e}; use binary models (task binary), or --task "
                "classification"
            ) from None

    def decisions(self, outputs: Outputs) -> np.ndarray:
        """1 where P(positive) is at or above ``threshold``."""
        return (positive_scores(self.postprocess(outputs)) >= self.threshold).astype(np.int64)

    def confidence(self, outputs: Outputs) -> np.ndarray:
        """max(p, 1 − p) of P(positive): the probability of the predicted label."""
        p = positive_scores(self.postprocess(outputs))
        return np.maximum(p, 1.0 - p)

    def decision_metrics(
        self, labels: np.ndarray, probs: np.ndarray, decisions: np.ndarray
    ) -> dict[str, Any]:
        """AUC of P(positive) (``probs``, (N,)); F1, precision and recall of class 1."""
        return {"auc": roc_auc(labels, probs), **decision_metrics(labels, decisions)}
