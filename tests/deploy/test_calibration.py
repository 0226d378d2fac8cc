"""Temperature scaling: recovers a known overconfidence, keeps calibrated stages at T ≈ 1, and
refuses degenerate data with a reason instead of an absurd temperature."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from modelpress.deploy.calibration import (
    T_MAX,
    T_MIN,
    CalibrationError,
    calibrated_probs,
    expected_calibration_error,
    fit_temperature,
    reliability,
)


def _binary(seed: int, n: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """True logits and labels drawn from them: the logits are calibrated by construction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    return z, (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)


def _multiclass(seed: int, n: int = 5000, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, (n, k))
    cumulative = softmax(z, axis=1).cumsum(axis=1)
    y = (rng.random((n, 1)) > cumulative).sum(axis=1)  # one draw per row from its softmax
    return z, y.astype(np.int64)


@pytest.mark.parametrize("make", [_binary, _multiclass], ids=["binary", "multiclass"])
def test_overconfident_logits_give_temperature_three(make) -> None:
    z, y = make(0)
    fit = fit_temperature(3.0 * z, y)  # a stage three times too sure of itself
    assert fit.accepted, fit.reason
    assert fit.temperature == pytest.approx(3.0, rel=0.10)
    assert fit.nll_after < fit.nll_before
    assert fit.ece_after < fit.ece_before / 2
    assert "lowers NLL" in fit.reason


def test_binary_logits_of_shape_n_by_1_are_one_logit() -> None:
    z, y = _binary(1)
    fit = fit_temperature((3.0 * z)[:, None], y)
    assert fit.temperature == pytest.approx(3.0, rel=0.10)
    assert calibrated_probs(z[:, None], fit.temperature).shape == (len(z),)


@pytest.mark.parametrize("make", [_binary, _multiclass], ids=["binary", "multiclass"])
def test_calibrated_logits_keep_temperature_near_one(make) -> None:
    z, y = make(2)
    fit = fit_temperature(z, y)
    assert fit.temperature == pytest.approx(1.0, rel=0.10)
    assert fit.ece_after < 0.05


def test_separable_data_stop_at_the_search_bound() -> None:
    # a perfectly separated set pulls a naive fit towards T → 0; the bound keeps it sane
    z = np.r_[-np.linspace(1, 5, 50), np.linspace(1, 5, 50)]
    y = np.r_[np.zeros(50, np.int64), np.ones(50, np.int64)]
    fit = fit_temperature(z, y)
    assert T_MIN <= fit.temperature <= T_MAX
    assert fit.temperature == pytest.approx(T_MIN, rel=0.05)
    assert "search bound" in fit.reason


@pytest.mark.parametrize(
    ("logits", "labels", "reason"),
    [
        (np.array([2.0, 1.0, -1.0, 3.0]), np.array([1, 1, 1, 1]), "one class only"),
        (np.zeros(20), np.arange(20) % 2, "does not lower NLL"),
        (np.zeros((0, 3)), np.zeros(0, np.int64), "no items"),
        (np.array([1.0, np.nan, -2.0, np.inf]), np.array([1, 0, 0, 1]), "NaN or Inf (2 of 4"),
    ],
    ids=["one-class", "constant-logits", "empty", "non-finite"],
)
def test_degenerate_sets_are_rejected_with_reason(logits, labels, reason) -> None:
    fit = fit_temperature(logits, labels)
    assert not fit.accepted
    assert fit.temperature == 1.0
    assert reason in fit.reason


def test_labels_that_do_not_fit_the_logits_are_refused() -> None:
    with pytest.raises(
        CalibrationError, match="labels run from 0 to 2, but these scores allow 0 or 1"
    ):
        fit_temperature(np.zeros(3), np.array([0, 1, 2]))
    with pytest.raises(CalibrationError, match="3 items but 2 labels"):
        fit_temperature(np.zeros((3, 4)), np.array([0, 1]))


def test_calibrated_probs_shapes_and_temperature_check() -> None:
    assert calibrated_probs(np.array([0.0, 100.0]), 2.0) == pytest.approx([0.5, 1.0])
    probs = calibrated_probs(np.array([[0.0, 0.0], [2.0, 0.0]]), 1.0)
    assert probs.shape == (2, 2) and probs.sum(axis=1) == pytest.approx([1.0, 1.0])
    with pytest.raises(CalibrationError, match="above 0"):
        calibrated_probs(np.zeros(3), 0.0)


def test_ece_of_a_known_miscalibration() -> None:
    # always 80 % sure of label 1, right half of the time: off by 0.3 everywhere
    probs, labels = np.full(100, 0.8), np.arange(100) % 2
    assert expected_calibration_error(probs, labels) == pytest.approx(0.3)
    bins = reliability(probs, labels, bins=10)
    assert sum(bins.count) == 100 and bins.count[8] == 100
    assert bins.confidence[8] == pytest.approx(0.8) and bins.accuracy[8] == pytest.approx(0.5)
    assert bins.confidence[0] is None and len(bins.edges) == 11


def test_multiclass_ece_uses_top1_confidence() -> None:
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])
    labels = np.array([0, 2, 2])  # right, wrong, right
    bins = reliability(probs, labels, bins=10)
    assert bins.count[9] == 1 and bins.accuracy[9] == 1.0  # 0.9 → last bin
    assert bins.count[6] == 2 and bins.accuracy[6] == pytest.approx(0.5)
    expected = (abs(0.9 - 1.0) + 2 * abs(0.6 - 0.5)) / 3
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(expected)
