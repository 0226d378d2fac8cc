"""Thresholds for a cascade's early exits, with a certified bound on leakage.

An early stage of a binary cascade exits NEGATIVE when its calibrated P(positive) is below
``low``, exits POSITIVE at or above ``high``, and defers the band [low, high) to the next stage.
Leakage is the share of positives that exit negative. Seeing 5 % leakage on calibration data
certifies nothing: the certificate is an exact binomial (Clopper–Pearson) upper bound at
``confidence`` on the true leakage, and a threshold is chosen only when that bound is at most
``max_leakage``.

The thresholds come from a grid fixed before the data are seen (Learn-then-Test). The passed
count only grows with ``low``, so the lows that certify form a prefix of the grid, and taking
the highest of them is a fixed-sequence test: no correction for the number of thresholds is
needed. With probability ≥ ``confidence`` over the draw of the calibration set, the chosen
threshold's leakage on new data from the same distribution is ≤ ``max_leakage``.

The positive exit is bounded the same way on the negatives (``max_false_alarm``: the share of
negatives exiting positive); without it, exiting every non-leaking item positive would defer
nothing and the precise stage would never run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from modelpress.errors import ModelpressError

POSITIVES_LIMIT = 10**7  # positives_needed gives up beyond this many


# Certificate kinds as cascade.json stores them (two thresholds: named for their first task)
TWO_THRESHOLDS, TOP_CONFIDENCE = "binary", "confidence"


class CertificationError(ModelpressError):
    """No threshold of the grid certifies the asked bound on these calibration data."""


@dataclass(frozen=True)
class Certificate:
    """Thresholds of one early stage and the bound that certifies them.

    kind TWO_THRESHOLDS: exit negative when p < ``low``, exit positive when p ≥ ``high`` (``None``:
    nothing exits positive), defer the rest; ``positives`` are the calibration positives and
    ``passed`` those exiting negative.
    kind TOP_CONFIDENCE (K classes): exit with the top-1 class when its probability ≥ ``high``
    (``low`` is None); ``positives`` / ``passed`` are the trials and failures ``measure`` names
    (early exits and their errors, or positive-class items and those exiting as another class).
    """

    kind: str
    low: float | None
    high: float | None
    positives: int  # the trials the bound counts
    passed: int  # the failures among them (leaked positives, or errors)
    upper_bound: float  # Clopper–Pearson upper bound at `confidence` on the failure rate
    max_leakage: float
    confidence: float
    certified: bool
    items: int  # calibration items the thresholds were chosen on
    deferred_share: float  # share of items left to the next stage
    exit_share: float  # share of items that exit early (1 − deferred_share)
    exit_negative_share: float | None  # binary: exit negative; positive classes: as another class
    exit_positive_share: float | None  # binary: exit positive; positive classes: as one of them
    positive_exit_precision: float | None  # share of positive exits that are truly positive
    measure: str  # what `passed` / `positives` count, in words
    negatives: int | None = None  # binary: calibration negatives
    false_alarms: int | None = None  # binary: negatives exiting positive
    false_alarm_bound: float | None = None  # Clopper–Pearson bound on their share (0: none exit)
    max_false_alarm: float | None = None
    note: str = ""  # e.g. why a bucket defers everything

    def to_dict(self) -> dict:
        return asdict(self)

    def route(self, scores: np.ndarray) -> np.ndarray:
        """(N,) int64 decisions on new items: binary −1 defer, 0 exit negative, 1 exit positive
        (scores: P(positive), shape (N,)); confidence −1 defer, else the top-1 class (scores:
        probabilities (N, K))."""
        s = np.asarray(scores, dtype=np.float64)
        if self.kind == TOP_CONFIDENCE:
            out = s.argmax(axis=1)
            out[s.max(axis=1) < self.high] = -1
            return out.astype(np.int64)
        s = s.reshape(-1)
        out = np.full(len(s), -1, dtype=np.int64)
        out[s < self.low] = 0
        if self.high is not None:
            out[s >= self.high] = 1
        return out


# --------------------------------------------------------------------------- bounds


def _upper(k: np.ndarray, n: np.ndarray, confidence: float) -> np.ndarray:
    """Vectorised one-sided Clopper–Pearson upper bounds (1 where k = n, including n = 0)."""
    from scipy.stats import beta

    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    out = np.ones(np.broadcast(k, n).shape)
    some = k < n
    if some.any():
        kk, nn = np.broadcast_to(k, out.shape)[some], np.broadcast_to(n, out.shape)[some]
        out[some] = beta.ppf(confidence, kk + 1, nn - kk)
    return out


def _check_level(name: str, value: float) -> None:
    try:
        ok = 0 < float(value) < 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise CertificationError(
            f"{name} must be a number between 0 and 1 (exclusive), got {value}"
        )


def clopper_pearson_upper(k: int, n: int, confidence: float) -> float:
    """Exact one-sided upper bound at ``confidence`` on a rate seen as k failures in n trials."""
    _check_level("confidence", confidence)
    if not (0 <= k <= n):
        raise ValueError(f"need 0 ≤ k ≤ n, got k={k}, n={n}")
    return float(_upper(np.asarray(k), np.asarray(n), confidence))


def positives_needed(
    max_leakage: float, confidence: float, observed_rate: float = 0.0
) -> int | None:
    """The fewest trials n whose bound, with round(observed_rate · n) failures, is ≤
    ``max_leakage``; None when none is (observed_rate ≥ max_leakage, or beyond 10⁷)."""
    _check_level("max_leakage", max_leakage)
    _check_level("confidence", confidence)
    if not 0 <= observed_rate < max_leakage:
        return None
    start, size = 1, 256
    while start <= POSITIVES_LIMIT:  # chunks doubling in size: the bound is not monotone in n
        n = np.arange(start, min(start + size, POSITIVES_LIMIT + 1))
        ok = np.flatnonzero(_upper(np.round(observed_rate * n), n, confidence) <= max_leakage)
        if ok.size:
            return int(n[ok[0]])
        start, size = start + size, size * 2
    return None


def _pct(x: float) -> str:
    return f"{100 * x:.3g} %"


# --------------------------------------------------------------------------- binary


def _grid(grid: Sequence[float] | np.ndarray | None) -> np.ndarray:
    g = np.arange(101) / 100 if grid is None else np.asarray(grid, dtype=np.float64)
    if g.ndim != 1 or g.size == 0 or not np.isfinite(g).all():
        raise CertificationError("grid: give a non-empty list of finite thresholds")
    return np.unique(g)


def _binary_inputs(
    p_positive: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p_positive, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if len(p) != len(y):
        raise CertificationError(f"{len(p)} scores but {len(y)} labels; give one label per item")
    if not np.isfinite(p).all():
        bad = int((~np.isfinite(p)).sum())
        raise CertificationError(f"scores hold NaN or Inf ({bad} of {len(p)} items)")
    if len(y) and not np.isin(y, (0, 1)).all():
        raise CertificationError("labels must be 0 (negative) or 1 (positive) for a binary stage")
    return p, y.astype(np.int64)


def _too_few(n: int, needed: int | None, max_leakage: float, confidence: float) -> str:
    need = f"at least {needed}" if needed else "more"
    return (
        f"only {n} positives in the calibration set: certifying leakage ≤ {_pct(max_leakage)} "
        f"at {_pct(confidence)} confidence needs {need} even with none let through (the best "
        f"bound here is {_pct(clopper_pearson_upper(0, n, confidence))}); use more calibration "
        "data or a larger max leakage"
    )


def choose_thresholds(
    p_positive: np.ndarray | Sequence[float],
    labels: np.ndarray | Sequence[int],
    *,
    max_leakage: float,
    confidence: float,
    grid: Sequence[float] | np.ndarray | None = None,
    max_false_alarm: float | None = None,
) -> Certificate:
    """(low, high) from ``grid`` (default 0, 0.01, … 1) whose leakage bound is ≤ ``max_leakage``
    and whose false-alarm bound is ≤ ``max_false_alarm`` (None: the same as ``max_leakage``;
    1: no cap), deferring the fewest items; ties go to the higher low, then the lower high.
    Raises CertificationError when no low certifies (too few positives)."""
    _check_level("max_leakage", max_leakage)
    _check_level("confidence", confidence)
    max_fa = max_leakage if max_false_alarm is None else max_false_alarm
    if not 0 < float(max_fa) <= 1:
        raise CertificationError(f"max_false_alarm must be above 0 and at most 1, got {max_fa}")
    p, y = _binary_inputs(p_positive, labels)
    lows = _grid(grid)
    highs = np.append(lows, np.inf)  # inf: nothing exits positive (no false alarm, ever)
    pos, neg, every = np.sort(p[y == 1]), np.sort(p[y == 0]), np.sort(p)
    n_pos, n_neg = len(pos), len(neg)
    needed = positives_needed(max_leakage, confidence)
    if n_pos == 0:
        raise CertificationError(
            f"the calibration set has no positives (label 1) among its {len(p)} items: leakage "
            f"cannot be certified; it needs at least {needed} positives"
        )
    passed = np.searchsorted(pos, lows, side="left")  # positives below each low
    leak_bound = _upper(passed, n_pos, confidence)
    low_ok = leak_bound <= max_leakage
    if not low_ok.any():
        if n_pos < (needed or math.inf):
            raise CertificationError(_too_few(n_pos, needed, max_leakage, confidence))
        best = int(np.argmin(leak_bound))
        raise CertificationError(
            f"no low threshold of the grid certifies leakage ≤ {_pct(max_leakage)}: the best, "
            f"{lows[best]:.4g}, lets {passed[best]} of {n_pos} positives through (bound "
            f"{_pct(leak_bound[best])}); add lower thresholds (0 lets none through) to the grid"
        )
    false_alarms = n_neg - np.searchsorted(neg, highs, side="left")  # negatives at or above
    fa_bound = np.where(np.isinf(highs), 0.0, _upper(false_alarms, n_neg, confidence))
    high_ok = fa_bound <= max_fa
    # every certified pair (low ≤ high); deferred = items in [low, high)
    li, hi = np.nonzero(low_ok[:, None] & high_ok[None, :] & (highs[None, :] >= lows[:, None]))
    deferred = np.searchsorted(every, highs[hi]) - np.searchsorted(every, lows[li])
    best = np.lexsort((highs[hi], -lows[li], deferred))[0]  # last key sorts first
    i, j = int(li[best]), int(hi[best])
    n = len(p)
    exit_neg = int(np.searchsorted(every, lows[i]))
    exit_pos = int(n - np.searchsorted(every, highs[j]))
    true_pos_exits = int(n_pos - np.searchsorted(pos, highs[j]))
    return Certificate(
        kind=TWO_THRESHOLDS,
        low=float(lows[i]),
        high=None if np.isinf(highs[j]) else float(highs[j]),
        positives=n_pos,
        passed=int(passed[i]),
        upper_bound=float(leak_bound[i]),
        max_leakage=float(max_leakage),
        confidence=float(confidence),
        certified=True,
        items=n,
        deferred_share=int(deferred[best]) / n,
        exit_share=(exit_neg + exit_pos) / n,
        exit_negative_share=exit_neg / n,
        exit_positive_share=exit_pos / n,
        positive_exit_precision=true_pos_exits / exit_pos if exit_pos else None,
        measure="positives exiting negative / positives",
        negatives=n_neg,
        false_alarms=int(false_alarms[j]),
        false_alarm_bound=float(fa_bound[j]),
        max_false_alarm=float(max_fa),
    )


def _defer_all(
    p: np.ndarray, y: np.ndarray, max_leakage: float, confidence: float, note: str
) -> Certificate:
    """Nothing exits: leakage is 0 whatever the data, so this certifies without counting."""
    n_pos = int((y == 1).sum())
    return Certificate(
        kind=TWO_THRESHOLDS,
        low=0.0,
        high=None,
        positives=n_pos,
        passed=0,
        upper_bound=0.0,
        max_leakage=float(max_leakage),
        confidence=float(confidence),
        certified=True,
        items=len(p),
        deferred_share=1.0,
        exit_share=0.0,
        exit_negative_share=0.0,
        exit_positive_share=0.0,
        positive_exit_precision=None,
        measure="positives exiting negative / positives",
        negatives=len(p) - n_pos,
        false_alarms=0,
        false_alarm_bound=0.0,
        note=note,
    )


def choose_thresholds_by_bucket(
    p_positive: np.ndarray | Sequence[float],
    labels: np.ndarray | Sequence[int],
    buckets: np.ndarray | Sequence[int],
    *,
    max_leakage: float,
    confidence: float,
    grid: Sequence[float] | np.ndarray | None = None,
    max_false_alarm: float | None = None,
) -> dict[int, Certificate]:
    """One certificate per bucket id (e.g. bins of predictive entropy or of an input quality
    score), each chosen on that bucket's items alone. A bucket too small to certify defers
    everything, which leaks nothing; its note says so. Each certificate holds at
    ``confidence`` on its own; all B of them at once with probability ≥ 1 − B·(1 − confidence)."""
    p, y = _binary_inputs(p_positive, labels)
    b = np.asarray(buckets).reshape(-1)
    if len(b) != len(p):
        raise CertificationError(f"{len(p)} scores but {len(b)} bucket ids; give one per item")
    if len(b) and not np.issubdtype(b.dtype, np.integer):
        raise CertificationError("bucket ids must be integers")
    out: dict[int, Certificate] = {}
    for bucket in np.unique(b).tolist():
        mask = b == bucket
        try:
            out[int(bucket)] = choose_thresholds(
                p[mask],
                y[mask],
                max_leakage=max_leakage,
                confidence=confidence,
                grid=grid,
                max_false_alarm=max_false_alarm,
            )
        except CertificationError as e:
            out[int(bucket)] = _defer_all(
                p[mask], y[mask], max_leakage, confidence, f"everything deferred: {e}"
            )
    return out


# --------------------------------------------------------------------------- multi-class


def choose_confidence_threshold(
    probs: np.ndarray,
    labels: np.ndarray | Sequence[int],
    *,
    max_error: float,
    confidence: float,
    positive_classes: Sequence[int] | None = None,
    grid: Sequence[float] | np.ndarray | None = None,
) -> Certificate:
    """The lowest top-1 confidence threshold t of ``grid`` (default 0, 0.01, … 1) certified by a
    fixed-sequence test from the top: items with confidence ≥ t exit with their top-1 class.

    Without ``positive_classes`` the bound is on the error rate among early exits; thresholds
    with fewer exits than any bound could certify are skipped (they depend on the confidences
    only, never on the labels), and the walk down stops at the first that fails. With
    ``positive_classes`` it is on the share of positive-class items that exit early as another
    class, which only grows as t falls."""
    _check_level("max_error", max_error)
    _check_level("confidence", confidence)
    pr = np.asarray(probs, dtype=np.float64)
    if pr.ndim != 2 or pr.shape[1] < 2:
        raise CertificationError(f"probabilities: shape {pr.shape}; give (N, K) with K ≥ 2")
    if not np.isfinite(pr).all():
        raise CertificationError("probabilities hold NaN or Inf")
    y = np.asarray(labels).reshape(-1)
    k_classes = pr.shape[1]
    if len(y) != len(pr):
        raise CertificationError(f"{len(pr)} items but {len(y)} labels; give one label per item")
    if len(y) and not (np.issubdtype(y.dtype, np.integer) and y.min() >= 0 and y.max() < k_classes):
        raise CertificationError(f"labels must be class numbers 0 … {k_classes - 1}")
    conf, top = pr.max(axis=1), pr.argmax(axis=1)
    ts = _grid(grid)[::-1]  # from the most cautious threshold down

    def at_or_above(values: np.ndarray) -> np.ndarray:  # (T,) how many values are ≥ each t
        return len(values) - np.searchsorted(np.sort(values), ts, side="left")

    needed = positives_needed(max_error, confidence)
    n = len(pr)
    if positive_classes is None:
        trials = at_or_above(conf)
        failures = at_or_above(conf[top != y])
        measure = "errors among early exits / early exits"
        tested = trials >= (needed or math.inf)
        if not tested.any():
            raise CertificationError(
                f"only {n} items in the calibration set: certifying an early-exit error ≤ "
                f"{_pct(max_error)} at {_pct(confidence)} confidence needs at least {needed} "
                "early exits; use more calibration data or a larger max error"
                if n < (needed or math.inf)
                else f"no threshold of the grid lets the {needed} items exit that certifying "
                f"an early-exit error ≤ {_pct(max_error)} needs; add lower thresholds"
            )
        # Start the walk where a bound could pass with some errors seen (half the max error),
        # not where it needs none: still a choice by the confidences alone, and a first test
        # on a handful of exits would end the walk at its first error.
        roomy = positives_needed(max_error, confidence, max_error / 2)
        if roomy is not None and (trials >= roomy).any():
            tested = trials >= roomy
    else:
        positive = np.isin(y, list(positive_classes))
        n_pos = int(positive.sum())
        if n_pos == 0:
            raise CertificationError(
                f"the calibration set has no items of the positive classes "
                f"{sorted(positive_classes)} among its {n}: their miss rate cannot be certified"
            )
        if n_pos < (needed or math.inf):
            raise CertificationError(_too_few(n_pos, needed, max_error, confidence))
        trials = np.full(len(ts), n_pos)
        failures = at_or_above(conf[positive & ~np.isin(top, list(positive_classes))])
        measure = "positive-class items exiting early as another class / positive-class items"
        tested = np.ones(len(ts), dtype=bool)
    bound = _upper(failures, trials, confidence)
    chosen = None
    for i in np.flatnonzero(tested):  # fixed sequence: stop at the first threshold that fails
        if bound[i] > max_error:
            break
        chosen = int(i)
    if chosen is None:
        first = int(np.flatnonzero(tested)[0])
        raise CertificationError(
            f"no threshold certifies {measure} ≤ {_pct(max_error)}: the most cautious one with "
            f"enough items to test, {ts[first]:.4g}, has {failures[first]} of {trials[first]} "
            f"(bound {_pct(bound[first])} at {_pct(confidence)} confidence); the stage cannot "
            "exit early at this max error"
        )
    out = conf >= ts[chosen]
    n_exit = int(out.sum())
    as_pos = None
    if positive_classes is not None:
        as_pos = out & np.isin(top, list(positive_classes))
    return Certificate(
        kind=TOP_CONFIDENCE,
        low=None,
        high=float(ts[chosen]),
        positives=int(trials[chosen]),
        passed=int(failures[chosen]),
        upper_bound=float(bound[chosen]),
        max_leakage=float(max_error),
        confidence=float(confidence),
        certified=True,
        items=n,
        deferred_share=(n - n_exit) / n,
        exit_share=n_exit / n,
        exit_negative_share=None if as_pos is None else int((out & ~as_pos).sum()) / n,
        exit_positive_share=None if as_pos is None else int(as_pos.sum()) / n,
        positive_exit_precision=(
            int((as_pos & positive).sum()) / int(as_pos.sum())
            if as_pos is not None and as_pos.any()
            else None
        ),
        measure=measure,
    )
