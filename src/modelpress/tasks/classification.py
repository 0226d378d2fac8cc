"""``classification``: one class per sample from K logits, judged by top-1 accuracy."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.errors import DataSourceError, ModelSourceError
from modelpress.evaluate.compare import top1
from modelpress.evaluate.metrics import (
    classification_metrics,
    decision_metrics,
    roc_auc,
    softmax,
)
from modelpress.tasks import register_task
from modelpress.tasks.base import (
    Chance,
    LossFn,
    Outputs,
    Task,
    chance_margin,
    counted,
    output_width,
)

if TYPE_CHECKING:
    import torch

    from modelpress.sources.data import Dataset

_ONE_CLASS = {
    "training": "the model cannot learn to tell classes apart",
    "validation": "its metrics say nothing about the other classes",
}


def _one_vector(shape: tuple[int, ...], task: str, source: str) -> None:
    """Refuse an output that is not one vector of scores per sample: (B, 2, 5) is two groups of
    five, or a map, and reading it as 10 logits would be a silent guess. Size-1 dimensions
    ((B, K, 1, 1) from a convolutional head) are fine."""
    dims = [d for d in shape[1:] if d != 1]
    if len(dims) <= 1:
        return
    shown = ", ".join(["B", *map(str, shape[1:])])
    raise ModelSourceError(
        f"{source} outputs ({shown}) per batch, not one vector of class scores per sample; "
        f"task {task} will not guess which of its {output_width(shape)} values are the logits: "
        "use --task fidelity (task: fidelity) to compare the outputs as they are, or return "
        "(B, K) logits from the model (e.g. flatten(1) in its forward)"
    )


@register_task
class Classification(Task):
    name = "classification"
    primary = "top1"
    plots = ("confusion_matrix",)

    # ------------------------------------------------------------------ labels
    def check_labels(self, data: Dataset) -> None:
        """Two classes at least: a split of one class gets a warning with its count, or an error
        where the task's metric cannot exist there (``_one_class_split``)."""
        super().check_labels(data)
        parts = (data.train, data.calibration, data.validation)
        labelled = [p.labels for p in parts if p.labels is not None and len(p)]
        if not labelled:
            return
        classes, counts = np.unique(np.concatenate(labelled), return_counts=True)
        self._check_classes(classes, data)
        if len(classes) == 1:  # top-1 and AUC alike mean nothing
            raise DataSourceError(
                f"{data.source}: every sample is labelled {classes[0]} ({counts[0]} samples); "
                f"task {self.name} needs samples of two classes at least (or use task: fidelity)"
            )
        for name, split in (("training", data.train), ("validation", data.validation)):
            if split.labels is None or len(split) == 0 or len(np.unique(split.labels)) > 1:
                continue
            what = (
                f"{data.source}: the {name} split holds one class only "
                f"({split.labels[0]}: {len(split)} samples)"
            )
            self._one_class_split(name, what, data)

    def _check_classes(self, classes: np.ndarray, data: Dataset) -> None:
        """Refuse labels outside what the task takes (any class id here)."""

    def _one_class_split(self, name: str, what: str, data: Dataset) -> None:
        data.warnings.append(f"{what}; {_ONE_CLASS[name]}")

    # ------------------------------------------------------------------ outputs
    def check_outputs(self, shapes: list[tuple[int, ...]], data: Dataset, source: str) -> None:
        shape = shapes[0]
        _one_vector(shape, self.name, source)
        if data.num_classes is None:
            return
        width, k = output_width(shape), data.num_classes
        if width < k:
            binary = " (or task: binary for its one logit)" if width == 1 and k == 2 else ""
            raise ModelSourceError(
                f"{source} outputs {width} values per sample but {data.source} has labels up to "
                f"{k - 1} ({k} classes); give the model {k} outputs (num_classes in model_kwargs)"
                f"{binary}, or drop the samples labelled {width} and above"
            )

    # ------------------------------------------------------------------ measuring
    def metrics(
        self, outputs: Outputs, labels: np.ndarray | None, reference: Outputs | None = None
    ) -> dict[str, Any]:
        """top1, top5 (over 5 classes), per-class accuracy and the confusion matrix."""
        scores = self.postprocess(outputs)
        out, finite = counted(scores)
        if labels is None:
            raise ValueError(f"task '{self.name}' needs labels")
        if not finite.any():  # every output NaN/Inf: nothing to score (the counts say so)
            return out
        return out | self._scores(scores[finite], labels[finite])

    def chance(self, labels: np.ndarray | None, reference: Outputs | None = None) -> Chance | None:
        """The share of the most common class among the validation labels: what a model that
        answers that class for every sample scores, and the best any model blind to its input
        can score (guessing by the label frequencies scores Σ p², less). 1/K would let a model
        that answers the majority class of unbalanced data pass as having learned."""
        if labels is None or not len(labels):
            return None
        classes, counts = np.unique(labels, return_counts=True)
        n, top = len(labels), int(counts.argmax())
        p = float(counts[top] / n)
        return Chance(
            self.primary,
            p,
            chance_margin(p, 1.0, math.sqrt(p * (1 - p) / n)),
            f"the share of the most common class, {classes[top]}, among {n} validation labels",
        )

    def collapse(
        self,
        metrics: dict[str, Any],
        parent: dict[str, Any] | None,
        chance: Chance | None = None,
        *,
        against_parent: bool = True,
    ) -> str | None:
        """As any task's, and names the class when the model answers one for every sample."""
        why = super().collapse(metrics, parent, chance, against_parent=against_parent)
        matrix = metrics.get("confusion_matrix")
        if why is None or not matrix:
            return why
        answered = np.flatnonzero(np.asarray(matrix).sum(axis=0))
        if len(answered) == 1:
            why += f"; it answers class {answered[0]} for every sample"
        return why

    def _scores(self, outputs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        return classification_metrics(outputs, labels)

    # ------------------------------------------------------------------ training
    def loss(self, label_smoothing: float = 0.0) -> LossFn:
        """Cross-entropy over the K logits."""
        from torch import nn

        ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

        def loss(outputs: torch.Tensor, labels: Any, inputs: list[torch.Tensor]) -> torch.Tensor:
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
        """CE on the labels + T² · KL of the softened softmaxes (``tasks/losses.py``)."""
        from modelpress.tasks.losses import kd_loss

        return kd_loss(student, teacher, labels, temperature, hard_weight, soft_weight, standardize)

    # ------------------------------------------------------------------ deployment
    cascade_exit = "confidence"

    def cascade_scores(self, outputs: Outputs) -> np.ndarray:
        """(N, K) the logits of the head."""
        head = np.asarray(self.postprocess(outputs), dtype=np.float64)
        flat = head.reshape(len(head), -1)
        if flat.shape[1] < 2:
            raise ModelSourceError(
                "a classification cascade stage gives one score per class, and this one gives a "
                "single output per item; use --task binary"
            )
        return flat

    def decisions(self, outputs: Outputs) -> np.ndarray:
        """The top class."""
        return top1(self.postprocess(outputs)).astype(np.int64)

    def confidence(self, outputs: Outputs) -> np.ndarray:
        """The top class's softmax probability."""
        return softmax(self.postprocess(outputs)).max(axis=1)

    def decision_metrics(
        self, labels: np.ndarray, probs: np.ndarray, decisions: np.ndarray
    ) -> dict[str, Any]:
        """AUC one-vs-rest; F1, precision and recall averaged over the classes (macro)."""
        return {
            "auc": roc_auc(labels, probs),
            **decision_metrics(labels, decisions, macro=True),
        }
