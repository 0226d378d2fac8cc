"""Certified early exits: the Clopper–Pearson facts the issue quotes, thresholds whose leakage
holds on fresh data, clear messages when the calibration set cannot certify, K-class early
exits and per-bucket certificates."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import softmax

from modelpress.deploy.certify import (
    Certificate,
    CertificationError,
    choose_confidence_threshold,
    choose_thresholds,
    choose_thresholds_by_bucket,
    clopper_pearson_upper,
    positives_needed,
)
from modelpress.errors import ModelpressError


def _scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A well-separated stage: P(positive) ~ Beta(6, 1.5) for positives, Beta(1.5, 6) else."""
    y = (rng.random(n) < 0.5).astype(np.int64)
    p = np.where(y == 1, rng.beta(6, 1.5, n), rng.beta(1.5, 6, n))
    return p, y


# --------------------------------------------------------------------------- the bound


def test_clopper_pearson_facts_from_the_issue() -> None:
    # 0 of 59 certifies 5 % at 95 %; 0 of 58 does not
    assert clopper_pearson_upper(0, 59, 0.95) <= 0.05 < clopper_pearson_upper(0, 58, 0.95)
    # 38 of 1000 (3.8 %) certifies 5 %; 39 do not
    assert clopper_pearson_upper(38, 1000, 0.95) <= 0.05 < clopper_pearson_upper(39, 1000, 0.95)
    # seeing 5 % certifies nothing
    assert clopper_pearson_upper(50, 1000, 0.95) > 0.05


def test_clopper_pearson_edges() -> None:
    assert clopper_pearson_upper(0, 0, 0.95) == 1.0
    assert clopper_pearson_upper(7, 7, 0.95) == 1.0
    assert clopper_pearson_upper(0, 59, 0.95) == pytest.approx(1 - 0.05 ** (1 / 59))
    with pytest.raises(ValueError, match="0 ≤ k ≤ n"):
        clopper_pearson_upper(5, 3, 0.95)


def test_positives_needed() -> None:
    assert positives_needed(0.05, 0.95) == 59
    n = positives_needed(0.05, 0.95, observed_rate=0.038)
    assert n is not None and 500 < n <= 1000  # 1000 positives with 38 seen certify
    assert clopper_pearson_upper(round(0.038 * n), n, 0.95) <= 0.05
    assert clopper_pearson_upper(round(0.038 * (n - 1)), n - 1, 0.95) > 0.05
    assert positives_needed(0.05, 0.95, observed_rate=0.05) is None
    with pytest.raises(CertificationError, match="max_leakage must be a number between 0 and 1"):
        positives_needed(1.5, 0.95)


# --------------------------------------------------------------------------- binary stage


def test_separated_scores_certify_with_little_deferred() -> None:
    p, y = _scores(np.random.default_rng(0), 2000)
    cert = choose_thresholds(p, y, max_leakage=0.05, confidence=0.95)
    assert cert.certified and cert.upper_bound <= 0.05
    assert cert.passed == int(((p < cert.low) & (y == 1)).sum())
    assert cert.positives == int(y.sum())
    assert cert.high is not None and cert.low <= cert.high
    assert cert.deferred_share < 0.1
    decisions = cert.route(p)  # the certificate's own routing reproduces its shares
    assert (decisions == -1).mean() == pytest.approx(cert.deferred_share)
    assert (decisions == 0).mean() == pytest.approx(cert.exit_negative_share)
    assert (decisions == 1).mean() == pytest.approx(cert.exit_positive_share)
    assert cert.positive_exit_precision == pytest.approx(y[decisions == 1].mean())
    assert cert.false_alarm_bound <= cert.max_false_alarm == 0.05
    assert cert.to_dict()["upper_bound"] == cert.upper_bound


def test_certificate_holds_on_20_reseeded_draws() -> None:
    """The issue's property: leakage on new data ≤ the certified bound in ≥ 19 of 20 draws.
    Picking the threshold where 5 % leak on calibration (no bound) fails it."""
    held = naive_held = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        p, y = _scores(rng, 2000)
        cert = choose_thresholds(p, y, max_leakage=0.05, confidence=0.95)
        fresh_positives = rng.beta(6, 1.5, 100_000)
        held += (fresh_positives < cert.low).mean() <= 0.05
        naive_low = np.quantile(p[y == 1], 0.05)
        naive_held += (fresh_positives < naive_low).mean() <= 0.05
    assert held >= 19
    assert naive_held < 19


def test_choice_defers_the_fewest_among_certified_pairs() -> None:
    """Brute force over every pair of a small grid agrees with the choice (ties: higher low,
    then lower high)."""
    rng = np.random.default_rng(3)
    y = (rng.random(600) < 0.5).astype(np.int64)
    p = np.where(y == 1, rng.beta(3, 2, 600), rng.beta(2, 3, 600))  # overlapping scores
    grid = np.linspace(0, 1, 21)
    cert = choose_thresholds(p, y, max_leakage=0.1, confidence=0.9, grid=grid)
    pos, neg = p[y == 1], p[y == 0]
    best = None
    for low, high in itertools.product(grid, [*grid, np.inf]):
        leak_ok = clopper_pearson_upper(int((pos < low).sum()), len(pos), 0.9) <= 0.1
        fa_ok = (
            np.isinf(high) or clopper_pearson_upper(int((neg >= high).sum()), len(neg), 0.9) <= 0.1
        )
        if low <= high and leak_ok and fa_ok:
            key = (((p >= low) & (p < high)).sum(), -low, high)
            best = key if best is None or key < best else best
    assert cert.deferred_share == pytest.approx(best[0] / len(p))
    assert (cert.low, np.inf if cert.high is None else cert.high) == (-best[1], best[2])
    assert 0.2 < cert.deferred_share < 1.0  # overlap leaves real work for the next stage


def test_without_a_false_alarm_cap_nothing_is_deferred() -> None:
    # only leakage bounded: every item that may not exit negative exits positive
    p, y = _scores(np.random.default_rng(4), 1000)
    cert = choose_thresholds(p, y, max_leakage=0.05, confidence=0.95, max_false_alarm=1.0)
    assert cert.deferred_share == 0.0 and cert.low == cert.high


def test_too_few_positives_says_how_many_are_needed() -> None:
    y = np.r_[np.ones(40, np.int64), np.zeros(200, np.int64)]
    p = np.r_[np.full(40, 0.9), np.full(200, 0.1)]
    with pytest.raises(CertificationError) as err:
        choose_thresholds(p, y, max_leakage=0.05, confidence=0.95)
    message = str(err.value)
    assert isinstance(err.value, ModelpressError) and "\n" not in message
    assert "only 40 positives" in message and "at least 59" in message
    assert "7.22 %" in message  # the best bound 40 positives allow (none let through)


def test_no_positives_is_one_clear_line() -> None:
    with pytest.raises(CertificationError, match=r"no positives \(label 1\) among its 30 items"):
        choose_thresholds(np.linspace(0, 1, 30), np.zeros(30), max_leakage=0.05, confidence=0.95)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(CertificationError, match=r"labels must be 0 .* or 1"):
        choose_thresholds([0.1, 0.9], [0, 2], max_leakage=0.05, confidence=0.95)
    with pytest.raises(CertificationError, match=r"NaN or Inf \(1 of 2 items\)"):
        choose_thresholds([0.1, np.nan], [0, 1], max_leakage=0.05, confidence=0.95)
    with pytest.raises(CertificationError, match="confidence must be a number between 0 and 1"):
        choose_thresholds([0.1, 0.9], [0, 1], max_leakage=0.05, confidence=95)


# --------------------------------------------------------------------------- K classes


def _kclass(rng: np.random.Generator, n: int, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    probs = softmax(rng.normal(0.0, 2.5, (n, k)), axis=1)
    y = (rng.random((n, 1)) > probs.cumsum(axis=1)).sum(axis=1)  # labels drawn from the probs
    return probs, y.astype(np.int64)


def test_multiclass_early_exit_error_is_certified() -> None:
    rng = np.random.default_rng(5)
    probs, y = _kclass(rng, 3000)
    cert = choose_confidence_threshold(probs, y, max_error=0.05, confidence=0.95)
    assert cert.kind == "confidence" and cert.low is None and cert.certified
    exits = probs.max(axis=1) >= cert.high
    assert cert.positives == exits.sum()
    assert cert.passed == (probs.argmax(axis=1) != y)[exits].sum()
    assert cert.upper_bound <= 0.05 and 0.05 < cert.exit_share < 0.95
    fresh, fresh_y = _kclass(rng, 50_000)
    decided = cert.route(fresh)
    assert (decided[decided >= 0] != fresh_y[decided >= 0]).mean() <= 0.05
    top1_error = (probs.argmax(axis=1) != y).mean()
    assert top1_error > 0.15  # exiting everything would break the bound


def test_multiclass_positive_classes_bound_their_miss_rate() -> None:
    rng = np.random.default_rng(6)
    probs, y = _kclass(rng, 3000)
    cert = choose_confidence_threshold(
        probs, y, max_error=0.05, confidence=0.95, positive_classes=[0]
    )
    assert cert.positives == (y == 0).sum()
    fresh, fresh_y = _kclass(rng, 50_000)
    decided = cert.route(fresh)
    missed = (fresh_y == 0) & (decided >= 1)  # a class-0 item exiting early as another class
    assert missed.sum() / (fresh_y == 0).sum() <= 0.05
    assert cert.exit_positive_share + cert.exit_negative_share == pytest.approx(cert.exit_share)


def test_multiclass_too_few_items_is_refused() -> None:
    probs, y = _kclass(np.random.default_rng(7), 40)
    with pytest.raises(CertificationError, match=r"only 40 items .* at least 59 early exits"):
        choose_confidence_threshold(probs, y, max_error=0.05, confidence=0.95)


# --------------------------------------------------------------------------- buckets


def test_buckets_each_get_a_certificate_and_small_ones_defer_everything() -> None:
    rng = np.random.default_rng(8)
    p, y = _scores(rng, 2000)
    buckets = np.zeros(2000, np.int64)
    buckets[:60] = 1  # about 30 positives: too few to certify on their own
    certs = choose_thresholds_by_bucket(p, y, buckets, max_leakage=0.05, confidence=0.95)
    assert sorted(certs) == [0, 1]
    assert all(isinstance(c, Certificate) and c.certified for c in certs.values())
    big, small = certs[0], certs[1]
    assert big.deferred_share < 0.1 and big.items == 1940 and big.note == ""
    assert small.deferred_share == 1.0 and small.upper_bound == 0.0
    assert "everything deferred" in small.note and "at least 59" in small.note
    assert (small.route(p[:60]) == -1).all()
