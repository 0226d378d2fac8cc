"""Temperature scaling and calibration error for a cascade's stages.

A stage's logits become probabilities once divided by one temperature T, fitted on the
calibration split by minimising the negative log-likelihood (NLL) over log T with a bounded
scalar search: T stays in [0.05, 20], since unbounded fits run off to 10⁶ (or below zero) on
separable data. A fit that does not lower the NLL is rejected and T = 1 kept.

Binary stages give one logit per item, shape (N,) or (N, 1), read through a sigmoid as P(label 1);
multi-class stages give one logit per class, shape (N, K), read through a softmax.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from modelpress.errors import ModelpressError

T_MIN, T_MAX = 0.05, 20.0  # the search range of the temperature
ECE_BINS = 15


class CalibrationError(ModelpressError):
    """Scores and labels that cannot be calibrated as given (shapes, label values)."""


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float  # divide the logits by this; 1.0 when the fit was rejected
    nll_before: float | None  # None when the data hold nothing to measure (empty, NaN/Inf)
    nll_after: float | None
    ece_before: float | None
    ece_after: float | None
    accepted: bool
    reason: str  # why the fit was kept or rejected, one line

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Reliability:
    """Equal-width confidence bins (a reliability diagram): per bin the mean predicted
    probability, the observed frequency, and the item count; ``None`` in empty bins."""

    edges: list[float]  # bins + 1 values from 0 to 1
    confidence: list[float | None]
    accuracy: list[float | None]
    count: list[int]

    @property
    def ece(self) -> float:
        """Expected calibration error: |confidence − accuracy| averaged over items."""
        total = sum(self.count)
        return sum(
            n * abs(c - a)
            for c, a, n in zip(self.confidence, self.accuracy, self.count, strict=True)
            if n
        ) / max(total, 1)

    def to_dict(self) -> dict:
        return {**asdict(self), "ece": self.ece}


def _binary_shape(arr: np.ndarray) -> bool:
    return arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)


def _labels(labels: np.ndarray | list, n: int, classes: int, what: str) -> np.ndarray:
    """(N,) int64 labels in [0, classes), or a CalibrationError naming what is wrong."""
    y = np.asarray(labels).reshape(-1)
    if len(y) != n:
        raise CalibrationError(f"{what}: {n} items but {len(y)} labels; give one label per item")
    whole = np.issubdtype(y.dtype, np.integer) or (
        (np.issubdtype(y.dtype, np.number) or y.dtype == bool)
        and bool(np.isfinite(y).all() and (y == np.round(y)).all())
    )
    if not whole:
        raise CalibrationError(f"{what}: labels must be whole class numbers")
    y = y.astype(np.int64)
    if n and (y.min() < 0 or y.max() >= classes):
        allowed = "0 or 1" if classes == 2 else f"0 … {classes - 1}"
        raise CalibrationError(
            f"{what}: labels run from {y.min()} to {y.max()}, but these scores allow {allowed}"
        )
    return y


def _logits(logits: np.ndarray | list) -> tuple[np.ndarray, bool]:
    """(N,) float64 for one logit per item (binary), (N, K) for K ≥ 2 classes."""
    z = np.asarray(logits, dtype=np.float64)
    if _binary_shape(z):
        return z.reshape(-1), True
    if z.ndim != 2:
        raise CalibrationError(
            f"logits: shape {z.shape}; give (N,) or (N, 1) for a binary stage, (N, K) for K classes"
        )
    return z, False


def _nll(z: np.ndarray, y: np.ndarray, binary: bool) -> float:
    """Mean negative log-likelihood of labels y under logits z (numerically stable)."""
    from scipy.special import logsumexp

    if binary:  # −log σ(z) for y = 1, −log(1 − σ(z)) for y = 0
        return float(np.mean(np.logaddexp(0.0, z) - y * z))
    return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y]))


def calibrated_probs(logits: np.ndarray | list, temperature: float) -> np.ndarray:
    """Probabilities from logits / T: binary → P(label 1), shape (N,); K classes → (N, K)."""
    from scipy.special import expit, softmax

    if not (math.isfinite(temperature) and temperature > 0):
        raise CalibrationError(f"temperature must be a finite number above 0, got {temperature}")
    z, binary = _logits(logits)
    return expit(z / temperature) if binary else softmax(z / temperature, axis=1)


def _confidence_and_hits(
    probs: np.ndarray | list, labels: np.ndarray | list
) -> tuple[np.ndarray, np.ndarray]:
    """Binary: P(label 1) and whether the label is 1; K classes: top-1 probability and whether
    the top-1 class is right. Both (N,)."""
    p = np.asarray(probs, dtype=np.float64)
    if not np.isfinite(p).all() or (p.size and (p.min() < 0 or p.max() > 1)):
        raise CalibrationError("probabilities must be finite and between 0 and 1")
    if _binary_shape(p):
        p = p.reshape(-1)
        return p, _labels(labels, len(p), 2, "probabilities") == 1
    if p.ndim != 2:
        raise CalibrationError(f"probabilities: shape {p.shape}; give (N,) or (N, K)")
    y = _labels(labels, len(p), p.shape[1], "probabilities")
    return p.max(axis=1), p.argmax(axis=1) == y


def reliability(
    probs: np.ndarray | list, labels: np.ndarray | list, bins: int = ECE_BINS
) -> Reliability:
    """Reliability bins over [0, 1]: binary probs are P(label 1) against the share of label 1,
    K-class probs (N, K) their top-1 confidence against top-1 correctness."""
    if bins < 1:
        raise CalibrationError(f"bins must be at least 1, got {bins}")
    conf, hit = _confidence_and_hits(probs, labels)
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)  # p = 1 falls in the last bin
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=conf, minlength=bins)
    hit_sum = np.bincount(which, weights=hit.astype(np.float64), minlength=bins)
    return Reliability(
        edges=np.linspace(0.0, 1.0, bins + 1).tolist(),
        confidence=[float(s / n) if n else None for s, n in zip(conf_sum, count, strict=True)],
        accuracy=[float(s / n) if n else None for s, n in zip(hit_sum, count, strict=True)],
        count=count.tolist(),
    )


def expected_calibration_error(
    probs: np.ndarray | list, labels: np.ndarray | list, bins: int = ECE_BINS
) -> float:
    """ECE over ``bins`` equal-width bins (0 for perfectly calibrated probabilities)."""
    return reliability(probs, labels, bins).ece


def _rejected(reason: str, nll: float | None = None, ece: float | None = None) -> TemperatureFit:
    return TemperatureFit(1.0, nll, nll, ece, ece, False, reason)


def fit_temperature(logits: np.ndarray | list, labels: np.ndarray | list) -> TemperatureFit:
    """The temperature minimising NLL on (logits, labels), or T = 1 with the reason it was
    rejected: no items, NaN/Inf logits, a single class in the labels, or no lower NLL."""
    from scipy.optimize import minimize_scalar

    z, binary = _logits(logits)
    classes = 2 if binary else z.shape[1]
    y = _labels(labels, len(z), classes, "logits")
    if len(z) == 0:
        return _rejected("no items to fit a temperature on")
    bad = ~np.isfinite(z.reshape(len(z), -1)).all(axis=1)
    if bad.any():
        return _rejected(f"logits hold NaN or Inf ({int(bad.sum())} of {len(z)} items)")
    nll_before = _nll(z, y, binary)
    ece_before = expected_calibration_error(calibrated_probs(z, 1.0), y)
    present = np.unique(y)
    if len(present) < 2:
        return _rejected(
            f"labels hold one class only (all {int(present[0])}): a temperature cannot be fitted",
            nll_before,
            ece_before,
        )
    result = minimize_scalar(
        lambda log_t: _nll(z / math.exp(log_t), y, binary),
        bounds=(math.log(T_MIN), math.log(T_MAX)),
        method="bounded",
        options={"xatol": 1e-5},
    )
    t = float(np.clip(math.exp(float(result.x)), T_MIN, T_MAX))
    nll_after = _nll(z / t, y, binary)
    if not (math.isfinite(nll_after) and nll_after < nll_before - 1e-12 * max(1.0, nll_before)):
        return _rejected(
            f"the fitted temperature {t:.4g} does not lower NLL ({nll_before:.4g} → "
            f"{nll_after:.4g})",
            nll_before,
            ece_before,
        )
    at_bound = t <= T_MIN * 1.01 or t >= T_MAX / 1.01
    reason = f"lowers NLL from {nll_before:.4g} to {nll_after:.4g}" + (
        f" (at the search bound: T is kept within [{T_MIN}, {T_MAX}])" if at_bound else ""
    )
    ece_after = expected_calibration_error(calibrated_probs(z, t), y)
    return TemperatureFit(t, nll_before, nll_after, ece_before, ece_after, True, reason)
