"""Metric helpers from a model's outputs, for the tasks (``tasks/``) to call. Each metric knows
whether higher is better."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelpress.evaluate.compare import top1


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
        MetricInfo("map50_95", True, "mAP@0.5:0.95 (COCO)"),
        MetricInfo("map50", True, "mAP@0.5"),
        MetricInfo("max_abs_diff", False, "max |Δ| to reference"),
        MetricInfo("mean_abs_diff", False, "mean |Δ| to reference"),
    ]
}


def higher_is_better(key: str) -> bool:
    """The direction of metric ``key`` (an unknown key counts as higher-is-better)."""
    info = METRICS.get(key)
    return info is None or info.higher_is_better


def worse_by(key: str, value: float, reference: float) -> float:
    """How much worse ``value`` of metric ``key`` is than ``reference`` (negative: better),
    whichever way the metric points."""
    return reference - value if higher_is_better(key) else value - reference


def softmax(outputs: np.ndarray) -> np.ndarray:
    """(N, K) class probabilities from (N, ...) logits, in float64."""
    flat = outputs.reshape(len(outputs), -1).astype(np.float64)
    z = flat - flat.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def positive_scores(outputs: np.ndarray) -> np.ndarray:
    """P(positive) for a binary head: sigmoid of one logit, or softmax column 1 of two."""
    flat = outputs.reshape(len(outputs), -1).astype(np.float64)
    if flat.shape[1] == 1:
        return 1.0 / (1.0 + np.exp(-flat[:, 0]))
    return softmax(flat)[:, 1]


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
    scores = positive_scores(outputs)
    pred = (scores >= threshold).astype(np.int64)
    auc = roc_auc(labels, scores)
    return {
        "auc": float("nan") if auc is None else auc,
        **decision_metrics(labels, pred),
        "threshold": threshold,
    }


def log_odds(outputs: np.ndarray) -> np.ndarray:
    """(N,) log-odds of the positive class from a binary head: one logit, or two (z1 − z0).
    ValueError for a head of any other width."""
    flat = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if flat.shape[1] == 1:
        return flat[:, 0]
    if flat.shape[1] == 2:
        return flat[:, 1] - flat[:, 0]
    raise ValueError(f"1 or 2 outputs per item, not {flat.shape[1]}")


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC of ``scores``: (N,) P(positive) against labels 0 / 1, or (N, K) class
    probabilities one-vs-rest (rows normalised to sum to 1). None where it does not exist:
    labels of one class, or classes among the labels other than the K columns."""
    from sklearn.metrics import roc_auc_score

    p = np.asarray(scores, dtype=np.float64)
    classes = len(np.unique(labels))
    if p.ndim == 1:
        return float(roc_auc_score(labels, p)) if classes == 2 else None
    if p.ndim != 2 or classes != p.shape[1]:
        return None
    rows = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    return float(roc_auc_score(labels, rows, multi_class="ovr"))


def decision_metrics(labels: np.ndarray, decisions: np.ndarray, macro: bool = False) -> dict:
    """F1, precision, recall and accuracy of answers already given: of class 1 among labels
    0 / 1, or with ``macro`` the mean over the classes."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    kw: dict = {"zero_division": 0, **({"average": "macro"} if macro else {})}
    return {
        "f1": float(f1_score(labels, decisions, **kw)),
        "precision": float(precision_score(labels, decisions, **kw)),
        "recall": float(recall_score(labels, decisions, **kw)),
        "accuracy": float((decisions == labels).mean()),
    }
