"""The one place that compares two models' outputs (verification and fidelity)."""

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


def verify(
    candidate: np.ndarray,
    reference: np.ndarray,
    task: str,
    *,
    min_agreement: float,
    min_cosine: float,
    judge: bool = True,
) -> tuple[dict[str, float | int | str | None], str | None]:
    """Verification of a child's outputs against its parent's: (the comparison, with what it is
    judged by and the threshold; why it is degraded, or None). Class heads are judged by top-1
    agreement, fidelity outputs (embeddings) by mean cosine; non-finite outputs always fail.
    ``judge=False`` (a retrained model, meant to differ) reports without judging."""
    result: dict[str, float | int | str | None] = dict(compare_outputs(candidate, reference))
    by, threshold = ("cosine", min_cosine) if task == "fidelity" else ("agreement", min_agreement)
    result["judged_by"], result["threshold"] = (by, threshold) if judge else (None, None)
    value = float(result[by])  # type: ignore[arg-type]
    problems = []
    if judge and not value >= threshold:  # NaN fails too
        problems.append(f"{by} with the parent is {value:.3f} (< {threshold})")
    if result["nonfinite_samples"]:
        problems.append(f"{result['nonfinite_samples']} non-finite outputs")
    return result, "; ".join(problems) or None
