from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modelpress.core.inputs import InputSpec, parse_input_shape
from modelpress.errors import DataSourceError
from modelpress.sources.data import load_data


def _ids(split) -> set[bytes]:
    return {row.tobytes() for row in split.inputs[0]}


def test_digits_split_is_disjoint_stratified_and_deterministic() -> None:
    a = load_data("builtin:digits", seed=3)
    b = load_data("builtin:digits", seed=3)
    c = load_data("builtin:digits", seed=4)
    assert len(a.train) + len(a.calibration) + len(a.validation) == 1797
    assert len(a.validation) == pytest.approx(0.2 * 1797, abs=2)
    assert not (_ids(a.calibration) & _ids(a.validation))
    assert np.array_equal(a.validation.labels, b.validation.labels)
    assert not np.array_equal(a.validation.inputs[0], c.validation.inputs[0])
    counts = np.bincount(a.validation.labels)
    assert counts.min() >= 33 and counts.max() <= 38  # every digit about equally


def test_digits_resize_to_rgb_input_shape() -> None:
    data = load_data("builtin:digits", input_specs=[InputSpec("input", (1, 3, 32, 32))])
    x = data.validation.inputs[0]
    assert x.shape[1:] == (3, 32, 32) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.array_equal(x[:, 0], x[:, 2])  # grey replicated to three channels


def test_breast_cancer_is_binary_and_standardised_on_train() -> None:
    data = load_data("builtin:breast_cancer")
    assert data.suggested_task == "binary" and data.num_classes == 2
    assert data.validation.inputs[0].shape[1:] == (30,)
    assert np.allclose(data.train.inputs[0].mean(0), 0, atol=1e-4)


def test_folder_of_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(
                tmp_path / cls / f"{i}.png"
            )
    data = load_data(f"folder:{tmp_path}", input_specs=[InputSpec("input", (1, 3, 16, 16))])
    assert data.class_names == ["cat", "dog"]
    assert data.validation.inputs[0].shape[1:] == (3, 16, 16)
    assert len(data.train) + len(data.calibration) + len(data.validation) == 16


def test_empty_data_folder(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    with pytest.raises(DataSourceError, match="no class sub-folders with images"):
        load_data(f"folder:{tmp_path}", input_specs=[InputSpec("input", (1, 3, 16, 16))])


def test_npz_used_exactly_as_given_and_labels_optional(tmp_path: Path) -> None:
    x = np.arange(40 * 5, dtype=np.float32).reshape(40, 5) * 1000
    np.savez(tmp_path / "d.npz", x=x)
    data = load_data(f"npz:{tmp_path / 'd.npz'}")
    assert data.suggested_task == "fidelity" and data.validation.labels is None
    rows = np.concatenate(
        [data.train.inputs[0], data.calibration.inputs[0], data.validation.inputs[0]]
    )
    assert sorted(rows[:, 0].tolist()) == sorted(x[:, 0].tolist())  # not rescaled


def test_npz_with_named_integer_inputs(tmp_path: Path) -> None:
    ids = np.random.default_rng(0).integers(0, 100, (30, 12))
    np.savez(tmp_path / "t.npz", x_ids=ids, x_mask=np.ones_like(ids), y=np.arange(30) % 2)
    data = load_data(f"npz:{tmp_path / 't.npz'}")
    assert data.input_names == ["ids", "mask"]
    assert data.validation.inputs[0].dtype == np.int64


def test_bad_npz_files(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="file not found"):
        load_data(f"npz:{tmp_path / 'absent.npz'}")
    np.savez(tmp_path / "noy.npz", features=np.zeros((20, 3)))
    with pytest.raises(DataSourceError, match="needs an array 'x'"):
        load_data(f"npz:{tmp_path / 'noy.npz'}")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataSourceError, match=r"not a readable \.npz"):
        load_data(f"npz:{tmp_path / 'junk.npz'}")


def test_input_shape_forms() -> None:
    assert parse_input_shape("1,3,32,32") == [InputSpec("input", (1, 3, 32, 32))]
    specs = parse_input_shape("ids:1x128:int64;mask:1,128")
    assert [(s.name, s.shape, s.dtype) for s in specs] == [
        ("ids", (1, 128), "int64"),
        ("mask", (1, 128), None),
    ]
    assert parse_input_shape({"ids": [1, 8]})[0].shape == (1, 8)
