"""The one place that compares two models' outputs (each task's ``verify`` and fidelity's
metrics call it)."""

from __future__ import annotations

import numpy as np


def top1(outputs: np.ndarray) -> np.ndarray:
    """Predicted class per row: argmax, or the sign of a single logit (binary heads)."""
    flat = outputs.reshape(len(outputs), -1)
    if flat.shape[1] == 1:
        return (flat[:, 0] > 0).astype(np.int64)
    return flat.argmax(axis=1)


def compare_outputs(candidate: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """max/mean |Δ|, mean per-sample cosine, and top-1 agreement of candidate vs reference."""
    if candidate.shape != reference.shape:
        raise ValueError(f"output shapes differ: {candidate.shape} vs {reference.shape}")
    c = candidate.reshape(len(candidate), -1).astype(np.float64)
    r = reference.reshape(len(reference), -1).astype(np.float64)
    finite = np.isfinite(c).all(axis=1)
    diff = np.abs(c[finite] - r[finite])
    norms = np.linalg.norm(c[finite], axis=1) * np.linalg.norm(r[finite], axis=1)
    cos = np.where(norms > 0, (c[finite] * r[finite]).sum(axis=1) / np.maximum(norms, 1e-30), 1.0)
    return {
        "max_abs_diff": float(diff.max()) if diff.size else float("nan"),
        "mean_abs_diff": float(diff.mean()) if diff.size else float("nan"),
        "cosine": float(cos.mean()) if cos.size else float("nan"),
        "agreement": float((top1(candidate) == top1(reference)).mean()),
        "nonfinite_samples": int((~finite).sum()),
        "samples": len(candidate),
    }
