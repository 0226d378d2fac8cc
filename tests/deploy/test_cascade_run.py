"""``deploy/inputs.py``: image files, folders and .npz arrays as batches for ``cascade run``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modelpress.deploy.inputs import InputsError, resolve
from modelpress.sources.images import _read_image

SHAPE = (1, 16, 16)


def _png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _pixels(n: int, h: int = 16, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


def _read(paths: list[Path], shape: tuple[int, ...] = SHAPE, size: int = 64) -> tuple:
    inputs = resolve(paths)
    batches = list(inputs.batches(shape, "float32", size))
    ids = [i for b in batches for i in b.ids]
    x = np.concatenate([b.x for b in batches]) if batches else np.zeros((0, *shape))
    return inputs, batches, ids, x


def test_a_folder_is_read_recursively_in_sorted_order_in_batches(tmp_path: Path) -> None:
    px = _pixels(5)
    for i, name in enumerate(["b.png", "a.png", "sub/c.png", "sub/deeper/d.jpg", "e.bmp"]):
        _png(tmp_path / "in" / name, px[i])
    (tmp_path / "in" / "notes.txt").write_text("not an image")

    inputs, batches, ids, x = _read([tmp_path / "in"], size=2)

    names = ["a.png", "b.png", "e.bmp", "sub/c.png", "sub/deeper/d.jpg"]
    assert ids == [str(tmp_path / "in" / n) for n in names]
    assert [len(b.ids) for b in batches] == [2, 2, 1]
    assert x.shape == (5, 1, 16, 16) and x.dtype == np.float32
    expected = np.stack([_read_image(tmp_path / "in" / n, *SHAPE)[0] for n in names])
    np.testing.assert_array_equal(x, expected)
    assert inputs.read == 5 and inputs.ignored == 1 and not inputs.skipped
    # a lossless PNG at the input size is its pixels / 255
    np.testing.assert_allclose(x[0, 0], px[1] / 255.0, atol=1e-6)


def test_rgb_images_keep_their_channels_or_become_grey_as_the_stages_take(
    tmp_path: Path,
) -> None:
    red = np.zeros((40, 24, 3), np.uint8)
    red[..., 0] = 255
    f = _png(tmp_path / "red.png", red)

    _, _, ids, rgb = _read([f], (3, 8, 8))
    _, _, _, grey = _read([f], (1, 8, 8))

    assert ids == [str(f)] and rgb.shape == (1, 3, 8, 8) and grey.shape == (1, 1, 8, 8)
    np.testing.assert_allclose(rgb[0, 0], 1.0)  # (C, H, W): red first, resized to 8×8
    np.testing.assert_allclose(rgb[0, 1:], 0.0)
    np.testing.assert_allclose(grey, 76 / 255, atol=1e-6)  # Pillow's luma: 0.299 × 255


def test_a_float_npz_is_used_as_given_and_named_by_index(tmp_path: Path) -> None:
    arr = np.random.default_rng(2).random((600, *SHAPE), dtype=np.float32)  # > one 256-row read
    np.savez(tmp_path / "a.npz", x=arr, y=np.zeros(600, dtype=np.int64))

    inputs, batches, ids, x = _read([tmp_path / "a.npz"], size=64)

    assert ids[:2] == [f"{tmp_path / 'a.npz'}#0", f"{tmp_path / 'a.npz'}#1"]
    assert len(ids) == 600 and ids[-1].endswith("#599") and len(batches) == 10
    np.testing.assert_array_equal(x, arr)
    assert inputs.read == 600


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_a_compressed_or_fortran_ordered_npz_reads_the_same(tmp_path: Path, save) -> None:
    arr = np.random.default_rng(3).random((7, *SHAPE)).astype(np.float64)
    save(tmp_path / "c.npz", inputs=np.asfortranarray(arr))  # the only array: any name

    _, _, _, x = _read([tmp_path / "c.npz"])

    np.testing.assert_allclose(x, arr.astype(np.float32))


@pytest.mark.parametrize("layout", ["NHW", "NHW1", "NHW3"])
def test_uint8_npz_images_read_as_the_same_pngs_would(tmp_path: Path, layout: str) -> None:
    px = _pixels(3, 20, 12, seed=4)  # resized to 16×16 on the way
    for i in range(3):
        _png(tmp_path / "png" / f"{i}.png", px[i])
    images = {"NHW": px, "NHW1": px[..., None], "NHW3": np.repeat(px[..., None], 3, axis=3)}
    np.savez(tmp_path / "u.npz", images=images[layout], y=np.arange(3))

    _, _, _, from_npz = _read([tmp_path / "u.npz"])
    _, _, _, from_png = _read([tmp_path / "png"])

    np.testing.assert_allclose(from_npz, from_png, atol=1 / 255)
    if layout != "NHW3":  # grey pixels: exactly the same conversion
        np.testing.assert_array_equal(from_npz, from_png)


def test_an_npz_of_several_arrays_uses_x_or_says_which_to_name(tmp_path: Path) -> None:
    arr = np.zeros((2, *SHAPE), np.float32)
    np.savez(tmp_path / "ok.npz", x=arr, other=np.ones(3))
    np.savez(tmp_path / "bad.npz", a=arr, b=arr)

    assert len(_read([tmp_path / "ok.npz"])[2]) == 2
    with pytest.raises(InputsError, match=r"bad\.npz: holds arrays a, b; name the input array x"):
        _read([tmp_path / "bad.npz"])


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros((2, 1, 8, 8), np.float32),  # wrong size: npz arrays are not resized
        np.zeros((2, 16, 16, 1), np.float32),  # channels last, but float
        np.zeros((2, 1, 16, 16), np.uint8),  # channels first uint8: not an image layout
    ],
)
def test_an_npz_of_the_wrong_shape_names_the_shape_expected(tmp_path: Path, arr) -> None:
    np.savez(tmp_path / "w.npz", x=arr)

    with pytest.raises(InputsError) as e:
        _read([tmp_path / "w.npz"])

    msg = str(e.value)
    assert "w.npz" in msg and "(N, 1, 16, 16) float or (N, H, W[, C]) uint8 images" in msg
    assert str(arr.shape) in msg and "\n" not in msg


def test_an_npz_that_is_not_an_archive_or_holds_objects_is_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}, None], dtype=object))

    with pytest.raises(InputsError, match=r"junk\.npz: not a readable \.npz archive"):
        _read([tmp_path / "junk.npz"])
    with pytest.raises(InputsError, match=r"obj\.npz: array 'x' holds Python objects"):
        _read([tmp_path / "obj.npz"])


def test_samples_with_nan_are_skipped_and_counted(tmp_path: Path) -> None:
    arr = np.zeros((3, *SHAPE), np.float32)
    arr[1, 0, 3, 3] = np.nan
    np.savez(tmp_path / "n.npz", x=arr)

    inputs, _, ids, _ = _read([tmp_path / "n.npz"])

    assert [i.rsplit("#")[1] for i in ids] == ["0", "2"]
    assert inputs.skipped == [(f"{tmp_path / 'n.npz'}#1", "holds NaN or Inf")]


def test_a_damaged_image_is_skipped_counted_and_named(tmp_path: Path) -> None:
    _png(tmp_path / "in" / "good.png", _pixels(1)[0])
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthen nothing")

    inputs, _, ids, _ = _read([tmp_path / "in"])

    assert ids == [str(tmp_path / "in" / "good.png")]
    assert inputs.read == 1 and len(inputs.skipped) == 1
    assert inputs.skipped[0][0] == str(tmp_path / "in" / "broken.png")
    assert inputs.skipped_line().startswith(f"{tmp_path / 'in' / 'broken.png'} (")


def test_a_one_pixel_image_is_read_and_a_huge_one_skipped_as_a_bomb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = _png(tmp_path / "tiny.png", np.full((1, 1), 255, np.uint8))
    huge = _png(tmp_path / "huge.png", _pixels(1, 64, 64)[0])
    # Pillow's limit lowered so a 64×64 image stands for a decompression bomb (> 2× the limit)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)

    inputs, _, ids, x = _read([tiny, huge])

    assert ids == [str(tiny)]
    np.testing.assert_array_equal(x, np.ones((1, *SHAPE), np.float32))
    assert len(inputs.skipped) == 1 and "decompression bomb" in inputs.skipped[0][1]


def test_images_shrunk_to_a_few_pixels_are_warned_about(tmp_path: Path) -> None:
    f = _png(tmp_path / "big.png", _pixels(1, 256, 256)[0])

    inputs, _, _, x = _read([f], (1, 4, 4))

    assert x.shape == (1, 1, 4, 4)
    assert len(inputs.warnings) == 1 and "256×256 images shrunk to 4×4" in inputs.warnings[0]


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: p / "missing.png", "missing.png: not found"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no images in this folder or below"),
        (lambda p: (p / "a.txt").write_text("x") and p / "a.txt", "neither an image"),
    ],
)
def test_a_bad_path_stops_before_any_work_with_one_line(tmp_path: Path, make, fragment) -> None:
    path = make(tmp_path)

    with pytest.raises(InputsError) as e:
        resolve([path])

    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_images_for_stages_that_take_no_images_are_refused(tmp_path: Path) -> None:
    f = _png(tmp_path / "a.png", _pixels(1)[0])

    with pytest.raises(InputsError, match=r"a\.png: the stages take input \(N, 30\), not images"):
        _read([f], (30,))


@pytest.mark.parametrize(
    ("meta", "names"),
    [
        ({"task": "binary"}, ["negative", "positive"]),  # a bundle that keeps no class names
        ({"classes": ["real", "fake"], "positive_index": 1}, ["real", "fake"]),
        ({"task": "binary", "classes": ["fake", "real"], "positive_index": 0}, ["real", "fake"]),
        ({"task": "classification", "classes": ["a", "b", "c"]}, ["a", "b", "c"]),
    ],
)
def test_each_decision_is_named_as_the_bundle_names_its_classes(
    meta: dict, names: list[str]
) -> None:
    from modelpress.cli.cascade_run import class_names

    assert class_names(meta) == names


def test_a_dangling_symlink_in_a_folder_is_skipped_counted_and_named(tmp_path: Path) -> None:
    """Regression: a symlink to a deleted image vanished from the results (neither read nor
    counted as skipped), so the output silently held one item fewer than the folder."""
    px = _pixels(2)
    _png(tmp_path / "in" / "a.png", px[0])
    _png(tmp_path / "in" / "c.png", px[1])
    (tmp_path / "in" / "b.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "in" / "notes.txt").symlink_to(tmp_path / "gone.txt")  # not an image: ignored

    inputs, _, ids, _ = _read([tmp_path / "in"])

    assert ids == [str(tmp_path / "in" / "a.png"), str(tmp_path / "in" / "c.png")]
    assert inputs.read == 2 and inputs.ignored == 1
    assert inputs.skipped == [
        (str(tmp_path / "in" / "b.png"), f"a dangling symlink to {tmp_path / 'gone.png'}")
    ]
    assert inputs.skipped_line() == (
        f"{tmp_path / 'in' / 'b.png'} (a dangling symlink to {tmp_path / 'gone.png'})"
    )


def test_a_dangling_symlink_given_by_name_stops_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "x.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(InputsError) as err:
        resolve([tmp_path / "x.png"])
    assert str(err.value) == (
        f"{tmp_path / 'x.png'}: a symlink to {tmp_path / 'gone.png'}, which does not exist; give "
        "image files, folders of images or .npz files"
    )
