"""Task-aware metrics from a model's outputs. Each metric knows whether higher is better."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelpress.evaluate.compare import compare_outputs, top1


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool
    label: str


METRICS = {
    m.name: m
    for m in [
        MetricInfo("top1", True, "top-1 accuracy"),
        MetricInfo("top5", True, "top-5 accuracy"),
        MetricInfo("auc", True, "ROC AUC"),
        MetricInfo("f1", True, "F1"),
        MetricInfo("precision", True, "precision"),
        MetricInfo("recall", True, "recall"),
        MetricInfo("accuracy", True, "accuracy at threshold"),
        MetricInfo("cosine", True, "cosine similarity to reference"),
        MetricInfo("agreement", True, "top-1 agreement with reference"),
        MetricInfo("max_abs_diff", False, "max |Δ| to reference"),
        MetricInfo("mean_abs_diff", False, "mean |Δ| to reference"),
    ]
}

# The metric a task is judged by (max_accuracy_drop, recommendations, Δ columns).
PRIMARY = {"classification": "top1", "binary": "auc", "fidelity": "cosine"}


def positive_scores(outputs: np.ndarray) -> np.ndarray:
    """P(positive) for a binary head: sigmoid of one logit, or softmax column 1 of two."""
    flat = outputs.reshape(len(outputs), -1).astype(np.float64)
    if flat.shape[1] == 1:
        return 1.0 / (1.0 + np.exp(-flat[:, 0]))
    z = flat - flat.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return p[:, 1]


def classification_metrics(outputs: np.ndarray, labels: np.ndarray) -> dict:
    flat = outputs.reshape(len(outputs), -1)
    pred = top1(flat)
    k = flat.shape[1]
    out: dict = {"top1": float((pred == labels).mean())}
    if k > 5:
        top5 = np.argsort(-flat, axis=1)[:, :5]
        out["top5"] = float((top5 == labels[:, None]).any(axis=1).mean())
    classes = np.arange(max(k, int(labels.max()) + 1))
    out["per_class"] = {
        str(c): float((pred[labels == c] == c).mean()) for c in classes if (labels == c).any()
    }
    from sklearn.metrics import confusion_matrix

    out["confusion_matrix"] = confusion_matrix(labels, pred, labels=classes).tolist()
    return out


def binary_metrics(outputs: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    scores = positive_scores(outputs)
    pred = (scores >= threshold).astype(np.int64)
    both = len(np.unique(labels)) == 2
    return {
        "auc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "f1": float(f1_score(labels, pred, zero_division=0)),
        "precision": float(precision_score(labels, pred, zero_division=0)),
        "recall": float(recall_score(labels, pred, zero_division=0)),
        "accuracy": float((pred == labels).mean()),
        "threshold": threshold,
    }


def compute_metrics(
    task: str,
    outputs: np.ndarray,
    labels: np.ndarray | None,
    reference: np.ndarray | None = None,
    threshold: float = 0.5,
) -> dict:
    """Metrics for ``task``. Rows with NaN/Inf outputs are counted, never averaged in."""
    finite = np.isfinite(outputs.reshape(len(outputs), -1)).all(axis=1)
    out: dict = {"samples": len(outputs)}
    if not finite.all():
        out["nonfinite_samples"] = int((~finite).sum())
    if task == "fidelity":
        if reference is None:
            raise ValueError("fidelity needs the reference model's outputs")
        cmp = compare_outputs(outputs, reference)
        return out | {k: cmp[k] for k in ("cosine", "max_abs_diff", "mean_abs_diff", "agreement")}
    if labels is None:
        raise ValueError(f"task '{task}' needs labels")
    o, y = outputs[finite], labels[finite]
    if task == "binary":
        return out | binary_metrics(o, y, threshold)
    return out | classification_metrics(o, y)
