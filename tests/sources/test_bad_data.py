"""Data that cannot be used as given: refused at load with the file and the fix, or loaded with
a warning that says what was lost."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modelpress.core.inputs import InputSpec
from modelpress.errors import DataSourceError
from modelpress.sources.data import load_data


def _shape(*dims: int) -> list[InputSpec]:
    return [InputSpec("input", (1, *dims))]


def _folder(root: Path, per_class: int = 6, value: int = 100) -> Path:
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((8, 8), value, np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(6):
            Image.fromarray(np.full((8, 8), 49119, np.uint16)).save(tmp_path / cls / f"{i}.png")
    assert Image.open(tmp_path / "a/0.png").mode.startswith("I")  # Pillow reads it as 16-bit
    for channels in (1, 3):
        data = load_data(f"folder:{tmp_path}", input_specs=_shape(channels, 8, 8))
        x = data.train.inputs[0]
        assert x.shape[1] == channels
        assert np.allclose(x * 255, 49119 * 255 / 65535, atol=0.01)  # 191.1, not 255


def test_eight_bit_images_unchanged(tmp_path: Path) -> None:
    data = load_data(f"folder:{_folder(tmp_path, value=200)}", input_specs=_shape(1, 8, 8))
    assert np.allclose(data.train.inputs[0], 200 / 255)


def test_every_unreadable_image_listed_in_one_error(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "imgs")
    for i in range(11):
        (folder / "a" / f"junk{i:02d}.png").write_bytes(b"junk")
    good = Image.new("L", (64, 64))
    good.save(folder / "b" / "cut.png")
    (folder / "b" / "cut.png").write_bytes((folder / "b" / "cut.png").read_bytes()[:60])
    with pytest.raises(DataSourceError) as err:
        load_data(f"folder:{folder}", input_specs=_shape(1, 8, 8))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"folder:{folder}: 12 of 24 images cannot be read: a/junk00.png, ")
    assert "a/junk09.png (not an image Pillow can read)" in msg
    assert "junk10" not in msg and "cut.png" not in msg  # only the first 10 by name
    assert msg.endswith("; and 2 more; remove or replace them")


def test_truncated_image_gives_its_reason(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "imgs")
    Image.new("L", (64, 64)).save(folder / "b" / "cut.png")
    (folder / "b" / "cut.png").write_bytes((folder / "b" / "cut.png").read_bytes()[:60])
    with pytest.raises(DataSourceError, match=r"1 of 13 images cannot be read: b/cut\.png \("):
        load_data(f"folder:{folder}", input_specs=_shape(1, 8, 8))


def _png_header_only(path: Path, width: int, height: int) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [10_000, 20_000])  # over Pillow's warning / error limits
def test_decompression_bomb_is_refused_by_name(tmp_path: Path, side: int) -> None:
    folder = _folder(tmp_path / "imgs")
    _png_header_only(folder / "a" / "bomb.png", side, side)
    with pytest.raises(DataSourceError, match=r"a/bomb\.png \(a possible decompression bomb"):
        load_data(f"folder:{folder}", input_specs=_shape(1, 8, 8))


def test_negative_label_named_with_its_index(tmp_path: Path) -> None:
    y = np.arange(30) % 3
    y[[4, 9]] = -2
    np.savez(tmp_path / "d.npz", x=np.zeros((30, 4), np.float32), y=y)
    with pytest.raises(DataSourceError, match=r"d\.npz: y\[4\] is -2 \(2 negative labels\)"):
        load_data(f"npz:{tmp_path / 'd.npz'}")


def _nonfinite_npz(path: Path) -> Path:
    x = np.random.default_rng(0).normal(size=(40, 3, 4)).astype(np.float32)
    x[17, 1, 2], x[30, 0, 0] = np.inf, np.nan
    np.savez(path, x=x, y=np.arange(40) % 2)
    return path


def test_nonfinite_samples_refused_with_the_first_index(tmp_path: Path) -> None:
    path = _nonfinite_npz(tmp_path / "d.npz")
    with pytest.raises(DataSourceError) as err:
        load_data(f"npz:{path}")
    assert str(err.value) == (
        f"npz:{path}: sample 17 holds NaN or Inf (2 of 40 samples do); clean the data, or set "
        "data.allow_nonfinite: true in the recipe to keep them"
    )


def test_nonfinite_samples_kept_when_allowed_and_counted(tmp_path: Path) -> None:
    data = load_data(f"npz:{_nonfinite_npz(tmp_path / 'd.npz')}", allow_nonfinite=True)
    assert data.nonfinite_samples == 2 and data.summary()["nonfinite_samples"] == 2
    kept = np.concatenate([p.inputs[0] for p in (data.train, data.calibration, data.validation)])
    assert (~np.isfinite(kept)).sum() == 2


def test_nonfinite_found_in_any_input_of_several(tmp_path: Path) -> None:
    mask = np.ones((20, 5), np.float32)
    mask[5, 1] = np.nan
    ids = np.ones((20, 5), np.int64)  # integer ids hold no NaN: not checked, not in the way
    np.savez(tmp_path / "t.npz", x_ids=ids, x_mask=mask, y=np.arange(20) % 2)
    with pytest.raises(DataSourceError, match=r"t\.npz: sample 5 holds NaN or Inf \(1 of 20"):
        load_data(f"npz:{tmp_path / 't.npz'}")


def test_shrinking_images_to_nothing_warns_with_the_factor() -> None:
    data = load_data("builtin:digits", input_specs=_shape(1, 2, 2))
    assert data.warnings == [
        "builtin:digits: 8×8 images shrunk to 2×2 (resize factor ×0.25): little of each image "
        "is left; use a larger input shape"
    ]
    assert data.summary()["warnings"] == data.warnings
    assert load_data("builtin:digits", input_specs=_shape(1, 16, 16)).warnings == []
    assert load_data("builtin:digits", input_specs=_shape(1, 8, 8)).warnings == []


def test_folder_images_shrunk_to_nothing_warn(tmp_path: Path) -> None:
    data = load_data(f"folder:{_folder(tmp_path)}", input_specs=_shape(1, 1, 1))
    assert any("8×8 images shrunk to 1×1 (resize factor ×0.125)" in w for w in data.warnings)


def test_data_that_cannot_fit_in_memory_is_refused_before_it_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelpress.core import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1_000_000)  # 1 MB left
    with pytest.raises(DataSourceError) as err:
        load_data("builtin:digits", input_specs=_shape(3, 32, 32))
    assert str(err.value) == (
        "builtin:digits: 1797 samples at input shape 1,3,32,32 would take 21.1 MB (12.0 KB each) "
        "but 977 KB of memory is available; use a smaller --input-shape / input_shape"
    )
    folder = _folder(tmp_path / "imgs")
    with pytest.raises(DataSourceError, match=r"12 samples at input shape 1,3,256,256"):
        load_data(f"folder:{folder}", input_specs=_shape(3, 256, 256))


def _labelled(path: Path, y: np.ndarray) -> str:
    x = np.random.default_rng(0).normal(size=(len(y), 8)).astype(np.float32)
    np.savez(path, x=x, y=y)
    return f"npz:{path}"


def test_one_stray_label_far_beyond_the_others_is_refused(tmp_path: Path) -> None:
    """Regression: labels 0–9 and a single 1000 built a 1001-class model without a word."""
    y = np.arange(200) % 10
    y[37] = 1000
    source = _labelled(tmp_path / "d.npz", y)
    with pytest.raises(DataSourceError) as err:
        load_data(source)
    assert str(err.value) == (
        f"{source}: label 1000 (1 of 200 samples) lies far beyond the others (0–9), which would "
        "make a 1001-class model for 11 labels: a typo? Fix y (class labels run 0, 1, … number "
        "of classes − 1)"
    )


def test_unused_class_ids_are_a_recorded_warning_with_the_count_of_classes(
    tmp_path: Path,
) -> None:
    y = np.arange(200) % 10
    y[:3] = 12  # a class 12 with 3 samples; 10 and 11 never occur
    data = load_data(_labelled(tmp_path / "d.npz", y))
    assert data.num_classes == 13
    assert data.warnings == [
        f"npz:{tmp_path / 'd.npz'}: labels 0–9, 12 occur, so the model gets 13 classes (the "
        "largest label + 1) and 2 of them no sample; rarest labels: 12 (3 samples), 0 (19 "
        "samples), 1 (19 samples); renumber y 0 … k−1 if those classes do not exist"
    ]
    assert data.summary()["warnings"] == data.warnings  # what record.json keeps


def test_labels_zero_to_k_minus_one_say_nothing(tmp_path: Path) -> None:
    data = load_data(_labelled(tmp_path / "d.npz", np.arange(50) % 5))
    assert data.num_classes == 5 and data.warnings == []
