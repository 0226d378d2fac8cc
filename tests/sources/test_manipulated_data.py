"""builtin:digits-manipulated: a balanced, deterministic real-vs-manipulated task whose splice a
linear model finds only in part (the seam is not trivial)."""

from __future__ import annotations

import numpy as np
import pytest

from modelpress.core.inputs import InputSpec
from modelpress.errors import DataSourceError
from modelpress.sources.data import load_data
from modelpress.sources.manipulated_data import digits_manipulated


def test_shapes_values_balance_and_names() -> None:
    x, y, names = digits_manipulated((3, 24, 20), seed=0, images=301)
    assert x.shape == (301, 3, 24, 20) and x.dtype == np.float32
    assert y.shape == (301,) and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.bincount(y).tolist() == [151, 150]
    assert names == ["real", "manipulated"]
    assert np.array_equal(x[:, 0], x[:, 2])  # grey repeated to every channel


def test_deterministic_by_seed() -> None:
    a = digits_manipulated((1, 16, 16), seed=3, images=200)
    b = digits_manipulated((1, 16, 16), seed=3, images=200)
    c = digits_manipulated((1, 16, 16), seed=4, images=200)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_a_linear_model_finds_the_splice_only_in_part() -> None:
    from sklearn.linear_model import LogisticRegression

    x, y, _ = digits_manipulated((1, 16, 16), seed=0)
    flat = x.reshape(len(x), -1)
    model = LogisticRegression(C=0.05, max_iter=1000).fit(flat[:900], y[:900])
    accuracy = model.score(flat[900:], y[900:])
    assert 0.6 < accuracy < 0.9


def test_load_data_gives_a_binary_task() -> None:
    data = load_data("builtin:digits-manipulated", input_specs=[InputSpec("input", (1, 1, 16, 16))])
    assert data.suggested_task == "binary" and data.num_classes == 2
    assert data.class_names == ["real", "manipulated"]
    assert len(data.train) + len(data.calibration) + len(data.validation) == 4000
    assert data.validation.inputs[0].shape[1:] == (1, 16, 16)
    assert abs(data.validation.labels.mean() - 0.5) < 0.02  # stratified split


def test_too_small_or_flat_shapes_are_refused() -> None:
    with pytest.raises(DataSourceError, match="4×4 is too small to paste a region"):
        digits_manipulated((1, 4, 4), seed=0)
    with pytest.raises(DataSourceError, match="images need an input shape N,C,H,W"):
        load_data("builtin:digits-manipulated", input_specs=[InputSpec("input", (1, 64))])


def test_unknown_builtin_lists_it() -> None:
    with pytest.raises(DataSourceError, match="builtin:digits-manipulated"):
        load_data("builtin:nope")


def test_the_splice_is_feathered() -> None:
    from modelpress.sources.manipulated_data import _feathered_mask

    mask = _feathered_mask(12, 12, top=4, left=4, rh=4, rw=4, feather=2)
    assert (mask[4:8, 4:8] == 1.0).all()  # the region is replaced whole
    assert mask[5, 3] == pytest.approx(2 / 3) and mask[5, 2] == pytest.approx(1 / 3)
    assert mask[5, 1] == 0.0 and mask[5, 8] == pytest.approx(2 / 3)  # a 2-pixel ramp around it
