"""How a cascade stage's outputs become scores, and how its certificate routes them.

A stage's scores are what its Task makes of its outputs (``Task.cascade_scores``): a binary
stage's the log-odds of the positive class, a classifier's its K logits; temperature-scaled,
they are probabilities. An early stage's certificate (or, with buckets, the
certificate of each item's bin) says which items exit with which decision and which defer.
Building, running and re-checking a bundle (``deploy/evidence.py``) all route through here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelpress.deploy.certify import TOP_CONFIDENCE
from modelpress.errors import ModelpressError

BUCKET_KINDS = ("entropy", "quality")
MAX_BUCKETS = 10


class CascadeError(ModelpressError):
    """A cascade that cannot be built or loaded as asked."""


# ---------------------------------------------------------------------- buckets


def parse_buckets(text: str | None) -> tuple[str, int] | None:
    """``entropy:3`` / ``quality:2`` → (kind, count)."""
    if not text:
        return None
    kind, _, count = text.partition(":")
    try:
        n = int(count) if count else 3
    except ValueError:
        n = -1
    if kind not in BUCKET_KINDS or not 2 <= n <= MAX_BUCKETS:
        raise CascadeError(
            f"--buckets {text}: give KIND:COUNT with KIND one of {', '.join(BUCKET_KINDS)} and "
            f"COUNT 2 … {MAX_BUCKETS} (e.g. entropy:3)"
        )
    return kind, n


def entropy(probs: np.ndarray) -> np.ndarray:
    """(N,) predictive entropy in nats of P(positive) (N,) or class probabilities (N, K)."""
    p = np.asarray(probs, dtype=np.float64)
    p = np.stack([1 - p, p], axis=1) if p.ndim == 1 else p
    q = np.clip(p, 1e-12, 1.0)
    return -(p * np.log(q)).sum(axis=1)


def sharpness(images: np.ndarray) -> np.ndarray:
    """(N,) variance of the Laplacian of each image's grey level (N, C, H, W): low when blurred
    or flat."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[2] < 3 or x.shape[3] < 3:
        raise CascadeError(
            f"--buckets quality scores images N,C,H,W of 3×3 pixels or more; these inputs are "
            f"{tuple(x.shape)}: use --buckets entropy"
        )
    g = x.mean(axis=1)
    lap = g[:, :-2, 1:-1] + g[:, 2:, 1:-1] + g[:, 1:-1, :-2] + g[:, 1:-1, 2:] - 4 * g[:, 1:-1, 1:-1]
    return lap.reshape(len(g), -1).var(axis=1).astype(np.float64)


def bucket_scores(kind: str, probs: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
    return entropy(probs) if kind == "entropy" else sharpness(inputs[0])


def route_by(
    probs: np.ndarray, cert: dict[str, Any], confidence: np.ndarray | None = None
) -> np.ndarray:
    """(N,) −1 defer, else the decision one certificate gives: two thresholds on P(positive)
    (0 / 1), or the top class where its ``confidence`` (the Task's, default the top class's
    probability) reaches the threshold."""
    if cert["kind"] == TOP_CONFIDENCE:
        out = probs.argmax(axis=1).astype(np.int64) if len(probs) else np.zeros(0, np.int64)
        sure = probs.max(axis=1, initial=0.0) if confidence is None else confidence
        high = np.inf if cert.get("high") is None else cert["high"]
        out[sure < high] = -1
        return out
    out = np.full(len(probs), -1, dtype=np.int64)
    out[probs < cert["low"]] = 0
    if cert.get("high") is not None:
        out[probs >= cert["high"]] = 1
    return out


def route(
    probs: np.ndarray,
    certificate: dict[str, Any] | None,
    buckets: dict[str, Any] | None,
    bucket_score: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
) -> np.ndarray:
    """(N,) −1 defer, else the decision by the bin's certificate (``bucket_score``: each item's
    score of ``buckets["by"]``) or by the stage's certificate (``confidence``: each item's, for
    a confidence exit). A stage with neither is the last: the caller decides (``Stage.route``).
    """
    if buckets is not None:
        if bucket_score is None:
            raise ValueError("a bucketed stage routes by each item's bucket score")
        ids = np.digitize(bucket_score, buckets["edges"])
        out = np.full(len(probs), -1, dtype=np.int64)
        for b, cert in enumerate(buckets["certificates"]):
            mask = ids == b
            sure = None if confidence is None else confidence[mask]
            out[mask] = route_by(probs[mask], cert, sure)
        return out
    if certificate is None:
        raise ValueError("the last stage decides by its task, not by a certificate")
    return route_by(probs, certificate, confidence)
