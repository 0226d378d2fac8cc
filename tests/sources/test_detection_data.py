"""Detection data: builtin:digits-detect, and the YOLO and COCO readers on tiny hand-written data
sets, with every box's letterboxed position computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from modelpress.core.inputs import InputSpec
from modelpress.core.recipe import build_recipe
from modelpress.errors import DataSourceError, RecipeError
from modelpress.sources.data import Dataset, Split, load_data

PAD = 114 / 255


def _specs(c: int = 3, h: int = 64, w: int = 64) -> list[InputSpec]:
    return [InputSpec("images", (1, c, h, w), "float32")]


def _png(path: Path, w: int, h: int, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), colour, np.uint8)).save(path)


# ---------------------------------------------------------------- builtin:digits-detect


def _digits(seed: int, specs: list[InputSpec] | None = None) -> Dataset:
    return load_data(
        "builtin:digits-detect", input_specs=specs or _specs(), seed=seed, max_samples=10
    )


def test_digits_detect_is_deterministic_by_seed() -> None:
    a, b, other = _digits(0), _digits(0), _digits(1)
    for part in ("train", "calibration", "validation"):
        sa, sb = getattr(a, part), getattr(b, part)
        np.testing.assert_array_equal(sa.inputs[0], sb.inputs[0])
        for la, lb in zip(sa.labels, sb.labels, strict=True):
            np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a.train.inputs[0], other.train.inputs[0])
    assert (len(a.train), len(a.calibration), len(a.validation)) == (7, 1, 2)


def test_digits_detect_labels_are_boxes_of_digits() -> None:
    data = _digits(0)
    assert data.num_classes == 10 and data.class_names == [str(i) for i in range(10)]
    assert data.suggested_task == "detection"
    for part in (data.train, data.calibration, data.validation):
        assert part.inputs[0].shape[1:] == (3, 64, 64) and part.inputs[0].dtype == np.float32
        assert part.inputs[0].min() >= 0 and part.inputs[0].max() <= 1
        assert part.labels.dtype == object and len(part.labels) == len(part)
        for lab in part.labels:
            assert lab.dtype == np.float32 and lab.ndim == 2 and lab.shape[1] == 5
            assert 1 <= len(lab) <= 6
            cls = lab[:, 0]
            assert (cls == np.round(cls)).all() and cls.min() >= 0 and cls.max() <= 9
            assert (lab[:, 1:] >= 0).all() and (lab[:, 1:] <= 1).all()
            assert (lab[:, 1] < lab[:, 3]).all() and (lab[:, 2] < lab[:, 4]).all()


def test_digits_detect_in_grey_and_too_small() -> None:
    grey = _digits(0, _specs(1, 64, 64))
    assert grey.validation.inputs[0].shape == (2, 1, 64, 64)
    with pytest.raises(DataSourceError) as err:
        _digits(0, _specs(3, 16, 16))
    assert "16×16 is too small" in str(err.value) and "32×32" in str(err.value)


# ---------------------------------------------------------------- YOLO
# Input 64 × 64. A 40 × 20 (W × H) image scales by 1.6 to 64 × 32, 16 rows of padding above and
# below; 20 × 40 to 32 × 64 with 16 columns left and right; 30 × 20 by 64/30 to 64 × 42.67 →
# 64 × 43, (64 − 43) // 2 = 10 rows above. A 40 × 40 image fills the input.
EXPECTED = {
    "t0": [[0, 0, 0.25, 1, 0.75], [1, 0, 0.25, 0.5, 0.5]],
    "t1": [[1, 0.25, 0, 0.75, 1]],
    "t2": [[0, 0, 10 / 64, 1, 53 / 64]],
    "t3": [],  # no label file: background
    "v0": [[1, 0, 0.25, 1, 0.75], [0, 0.4, 0.45, 0.6, 0.55]],
    "v1": [[0, 0, 0.5, 0.5, 1]],
}
IMAGES = {  # name: (W, H, colour, label lines)
    "train/t0": (40, 20, (200, 50, 0), "0 0.5 0.5 1 1\n1 0.25 0.25 0.5 0.5\n"),
    "train/t1": (20, 40, (0, 200, 50), "1 0.5 0.5 1 1\n"),
    "train/t2": (30, 20, (50, 0, 200), "0 0.5 0.5 1 1\n5 0.5 0.5 0.2 0.2\n"),
    "train/t3": (40, 40, (90, 90, 90), None),
    "val/v0": (40, 20, (10, 20, 30), "1 0.5 0.5 1 1\n0 1.2 0.5 0.1 0.1\n\n0 0.5 0.5 0.2 0.2\n"),
    "val/v1": (40, 40, (30, 20, 10), "0 0.25 0.75 0.5 0.5\n2 0.5 0.5 0.1 0.1\n"),
}


def _yolo_set(root: Path, **doc: object) -> Path:
    for name, (w, h, colour, lines) in IMAGES.items():
        _png(root / "images" / f"{name}.png", w, h, colour)
        if lines is not None:
            label = root / "labels" / f"{name}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(lines)
    doc = {"path": ".", "train": "images/train", "val": "images/val", "names": ["a", "b"]} | doc
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in doc.items() if v is not None}))
    return path


COLOURS = {tuple(v[2]): k.split("/")[1] for k, v in IMAGES.items()}


def _named(split: Split) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each loaded image and its labels, named by the colour it was painted."""
    out = {}
    for x, lab in zip(split.inputs[0], split.labels, strict=True):
        out[COLOURS[tuple(int(v) for v in np.round(x[:, 32, 32] * 255))]] = (x, lab)
    return out


@pytest.mark.parametrize("names", [["a", "b"], {0: "a", 1: "b"}], ids=["list", "dict"])
def test_yolo_letterboxes_images_and_their_boxes(tmp_path: Path, names: object) -> None:
    data = load_data(f"yolo:{_yolo_set(tmp_path, names=names)}", input_specs=_specs())
    assert data.class_names == ["a", "b"] and data.num_classes == 2
    assert [len(data.train), len(data.calibration), len(data.validation)] == [4, 0, 2]
    loaded = _named(data.train)
    assert set(loaded) == {"t0", "t1", "t2", "t3"}
    val = _named(data.validation)
    assert set(val) == {"v0", "v1"}
    for name, boxes in EXPECTED.items():
        got = (loaded | val)[name][1]
        np.testing.assert_allclose(got, np.asarray(boxes, np.float32).reshape(-1, 5), atol=1e-6)
    # pixels: the wide image sits between 16 grey rows above and below, unchanged in colour
    x = loaded["t0"][0]
    assert np.allclose(x[:, :16], PAD) and np.allclose(x[:, 48:], PAD)
    assert np.allclose(x[:, 16:48], (np.array([200, 50, 0]) / 255)[:, None, None], atol=1e-6)
    x = loaded["t1"][0]  # the tall one between 16 grey columns
    assert np.allclose(x[:, :, :16], PAD) and np.allclose(x[:, :, 48:], PAD)


def test_yolo_counts_what_it_dropped_and_keeps_unlabelled_images(tmp_path: Path) -> None:
    data = load_data(f"yolo:{_yolo_set(tmp_path)}", input_specs=_specs())
    where = f"yolo:{tmp_path / 'data.yaml'}"
    assert data.warnings == [
        f"{where}: 2 label lines name a class ≥ 2 (names has 2); those boxes were dropped, "
        "their images kept",
        f"{where}: 1 label lines have coordinates outside [0, 1]; those boxes were dropped, their "
        "images kept (YOLO labels are normalised cx cy w h)",
        f"{where}: 1 images have no label file; kept as background",
    ]
    assert _named(data.train)["t3"][1].shape == (0, 5)


def test_yolo_splits_listed_in_txt_files_load_the_same(tmp_path: Path) -> None:
    folders = load_data(f"yolo:{_yolo_set(tmp_path)}", input_specs=_specs())
    (tmp_path / "train.txt").write_text(
        "".join(f"./images/{k}.png\n" for k in IMAGES if k.startswith("train"))
    )
    (tmp_path / "val.txt").write_text(  # absolute paths, and a blank line
        "\n".join(str(tmp_path / "images" / f"{k}.png") for k in IMAGES if k.startswith("val"))
        + "\n\n"
    )
    path = tmp_path / "lists.yaml"
    path.write_text(yaml.safe_dump({"train": "train.txt", "val": "val.txt", "names": ["a", "b"]}))
    lists = load_data(f"yolo:{path}", input_specs=_specs())
    for part in ("train", "validation"):
        a, b = getattr(folders, part), getattr(lists, part)
        np.testing.assert_array_equal(a.inputs[0], b.inputs[0])
        for la, lb in zip(a.labels, b.labels, strict=True):
            np.testing.assert_array_equal(la, lb)


@pytest.mark.parametrize("key", ["val", "names"])
def test_yolo_yaml_without_a_key_names_it(tmp_path: Path, key: str) -> None:
    path = _yolo_set(tmp_path, **{key: None})
    with pytest.raises(DataSourceError) as err:
        load_data(f"yolo:{path}", input_specs=_specs())
    msg = str(err.value)
    assert msg.startswith(f"yolo:{path}: has no '{key}'") and "\n" not in msg


def test_yolo_val_only_in_grey(tmp_path: Path) -> None:
    path = _yolo_set(tmp_path, train=None)
    data = load_data(f"yolo:{path}", input_specs=_specs(1))
    assert data.validation.inputs[0].shape == (2, 1, 64, 64)
    assert len(data.train) == 0 and len(data.calibration) == 0


# ---------------------------------------------------------------- COCO
# Categories 7, 1, 3 → classes 0 (1), 1 (3), 2 (7), in id order. 40 × 40 images fill the 64 × 64
# input, so their boxes are x / 40; the 40 × 20 one is letterboxed as in the YOLO cases.
COCO_IMAGES = {  # id: (file, W, H, grey, expected labels)
    10: ("c0.png", 40, 40, 40, [[2, 0.1, 0.2, 0.6, 0.45]]),
    11: ("c1.png", 40, 40, 80, [[0, 0, 0, 1, 1]]),
    12: ("c2.png", 40, 40, 120, [[1, 0.25, 0.25, 0.5, 0.5]]),
    13: ("c3.png", 40, 20, 160, [[0, 0, 0.25, 1, 0.75]]),
    14: ("c4.png", 40, 40, 200, []),
}
ANNOTATIONS = [
    (10, 7, [4, 8, 20, 10], 0),
    (11, 1, [0, 0, 40, 40], 0),
    (11, 3, [5, 5, 10, 10], 1),  # crowd: skipped
    (12, 3, [10, 10, 10, 10], 0),
    (13, 1, [0, 0, 40, 20], 0),
]


def _coco_set(root: Path, images_dir: Path, extra: list[dict] | None = None) -> Path:
    for _id, (file, w, h, grey, _) in COCO_IMAGES.items():
        _png(images_dir / file, w, h, (grey, grey, grey))
    doc = {
        "images": [
            {"id": i, "file_name": f, "width": w, "height": h}
            for i, (f, w, h, _, _) in COCO_IMAGES.items()
        ],
        "categories": [
            {"id": 7, "name": "seven"},
            {"id": 1, "name": "one"},
            {"id": 3, "name": "three"},
        ],
        "annotations": [
            {"id": k, "image_id": i, "category_id": c, "bbox": b, "iscrowd": crowd, "area": 1}
            for k, (i, c, b, crowd) in enumerate(ANNOTATIONS)
        ]
        + (extra or []),
    }
    path = root / "ann.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("where", ["images", "explicit"])
def test_coco_maps_categories_in_id_order_and_boxes_to_the_input(
    tmp_path: Path, where: str
) -> None:
    images = tmp_path / ("images" if where == "images" else "elsewhere")
    ann = _coco_set(tmp_path, images)
    source = f"coco:{ann}" + (f":{images}" if where == "explicit" else "")
    data = load_data(source, input_specs=_specs())
    assert data.class_names == ["one", "three", "seven"] and data.num_classes == 3
    assert data.warnings == [f"coco:{ann}: 1 of 5 annotations skipped: 1 crowd regions (iscrowd)"]
    grey = {g: labels for (_, _, _, g, labels) in COCO_IMAGES.values()}
    seen = 0
    for part in (data.train, data.calibration, data.validation):
        assert len(part) >= 1
        for x, lab in zip(part.inputs[0], part.labels, strict=True):
            g = round(float(x[0, 32, 32]) * 255)
            expected = np.asarray(grey[g], np.float32).reshape(-1, 5)
            np.testing.assert_allclose(lab, expected, atol=1e-6)
            seen += 1
    assert seen == len(COCO_IMAGES)


def test_coco_malformed_boxes_are_skipped_and_counted(tmp_path: Path) -> None:
    """Regression: a bbox of the wrong length crashed the reader with a bare ValueError, and a
    NaN one (Python's json reads NaN) went into the labels."""
    extra = [
        {"id": 90, "image_id": 14, "category_id": 1, "bbox": [1, 2, 3]},
        {"id": 91, "image_id": 14, "category_id": 1, "bbox": [float("nan"), 0, 10, 10]},
        {"id": 92, "image_id": 14, "category_id": 1},
        {"id": 93, "image_id": 14, "category_id": 1, "bbox": [0, 0, 10, 0]},
        {"id": 94, "image_id": 99, "category_id": 1, "bbox": [0, 0, 10, 10]},  # no such image
        {"id": 95, "image_id": 14, "category_id": 2, "bbox": [0, 0, 10, 10]},  # no such class
    ]
    ann = _coco_set(tmp_path, tmp_path, extra)
    data = load_data(f"coco:{ann}", input_specs=_specs())
    assert data.warnings[0] == (
        f"coco:{ann}: 7 of 11 annotations skipped: 1 crowd regions (iscrowd), 1 with a "
        "category_id that no category has, 1 with an image_id that no image has, 4 without a "
        "usable bbox (4 finite numbers x, y, w, h with w, h > 0)"
    )
    labels = [lab for s in (data.train, data.calibration, data.validation) for lab in s.labels]
    assert all(np.isfinite(lab).all() for lab in labels)
    assert sum(map(len, labels)) == 4  # the four good boxes


def test_coco_missing_images_are_listed(tmp_path: Path) -> None:
    ann = _coco_set(tmp_path, tmp_path)
    (tmp_path / "c2.png").unlink()
    with pytest.raises(DataSourceError) as err:
        load_data(f"coco:{ann}", input_specs=_specs())
    msg = str(err.value)
    assert msg.startswith(f"coco:{ann}: 1 of 5 images cannot be read: c2.png (missing)")
    assert "\n" not in msg


# ---------------------------------------------------------------- through the recipe


def test_a_detection_recipe_validates_and_a_bad_setting_is_named(tmp_path: Path) -> None:
    """Detection's settings live under ``task:`` (registered by the task); a recipe written
    before, with a top-level ``detection:``, reads the same; a bad value or a setting for a task
    without settings is named with its path."""
    path = _yolo_set(tmp_path)
    base = {"model": "zoo:yolo_nano", "data": f"yolo:{path}"}
    recipe = build_recipe({**base, "task": {"name": "detection", "iou": 0.6}})
    assert recipe.task == "detection" and recipe.data.source == f"yolo:{path}"
    assert recipe.task_settings == {"iou": 0.6}
    assert recipe.to_dict()["task"] == {"name": "detection", "iou": 0.6}
    assert build_recipe(recipe.to_dict()).task_settings == {"iou": 0.6}  # as written, read back
    legacy = build_recipe({**base, "task": "detection", "detection": {"iou": 0.6}})
    assert legacy.task_settings == {"iou": 0.6} and "detection" not in legacy.to_dict()
    for raw, expect in (
        ({"name": "detection", "conf": 2}, "task.conf: Input should be less than 1"),
        ({"name": "detection", "nms": 0.5}, "task.nms: unknown key"),
        ({"name": "classification", "iou": 0.5}, "task.iou: the task 'classification' takes no"),
        ({"iou": 0.5}, "task.name: a task given as a mapping names its task"),
    ):
        with pytest.raises(RecipeError) as err:
            build_recipe({**base, "task": raw})
        assert expect in str(err.value), str(err.value)


def test_yolo_non_finite_label_values_are_dropped_and_counted(tmp_path: Path) -> None:
    """Regression: a NaN or infinite class crashed the reader with a bare ValueError /
    OverflowError, and NaN coordinates passed the [0, 1] check into the labels."""
    path = _yolo_set(tmp_path)
    (tmp_path / "labels" / "val" / "v1.txt").write_text(
        "nan 0.5 0.5 0.1 0.1\n-inf 0.5 0.5 0.1 0.1\n0 nan 0.5 0.1 0.1\n0 0.5 0.5 0.2 inf\n"
        "0 0.25 0.75 0.5 0.5\n"
    )
    data = load_data(f"yolo:{path}", input_specs=_specs())
    labels = _named(data.validation)["v1"][1]
    np.testing.assert_allclose(labels, [[0, 0, 0.5, 0.5, 1]], atol=1e-6)
    assert "3 label lines name a class ≥ 2" in data.warnings[0]  # with t2's class 5
    assert "3 label lines have coordinates outside [0, 1]" in data.warnings[1]  # with v0's 1.2


def test_yolo_segment_lines_become_their_boxes(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(tmp_path / "images" / "a.png")
    # a triangle: x from 0.25 to 0.75, y from 0.25 to 0.5
    (tmp_path / "labels" / "a.txt").write_text("1 0.25 0.25 0.75 0.25 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text("path: .\nval: images\nnames: [a, b]\n")

    data = load_data(
        f"yolo:{tmp_path / 'data.yaml'}",
        input_specs=[InputSpec("images", (1, 3, 32, 32), "float32")],
    )

    (box,) = data.validation.labels[0]
    assert box.tolist() == pytest.approx([1, 0.25, 0.25, 0.75, 0.5])


def test_a_16_bit_grey_image_is_scaled_not_clipped(tmp_path: Path) -> None:
    """A 16-bit PNG's values run to 65535: read as every image in modelpress is (scaled to
    [0, 1]), not clipped at 255 by an 8-bit conversion."""
    root = tmp_path / "set"
    (root / "images/val").mkdir(parents=True)
    (root / "labels/val").mkdir(parents=True)
    Image.fromarray(np.full((40, 40), 30000, np.uint16)).save(root / "images/val/deep.png")
    (root / "labels/val/deep.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    doc = {"path": ".", "val": "images/val", "names": ["a"]}
    (root / "data.yaml").write_text(yaml.safe_dump(doc))
    for c in (1, 3):
        x = load_data(f"yolo:{root / 'data.yaml'}", input_specs=_specs(c)).validation.inputs[0]
        assert x.shape == (1, c, 64, 64)
        np.testing.assert_allclose(x[0, :, 32, 32], 30000 / 65535, atol=1e-4)


# ---------------------------------------------------------------- faults named, before any image


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["categories"][1].pop("id"), "categories[1] has no 'id'"),
        (lambda d: d["images"][2].pop("id"), "images[2] has no 'id'"),
        (
            lambda d: d["images"][0].update(width="40"),
            'images[0].width is "40" (a string); it must be a number of pixels above 0',
        ),
        (lambda d: d["images"].insert(1, "c9.png"), 'images[1] is "c9.png" (a string), not an'),
        (lambda d: d["annotations"].append([1, 2]), "annotations[5] is [1, 2] (a list), not an"),
        (lambda d: d["images"][3].update(id=10), "images[3].id 10 is also the id of images[0]"),
    ],
)
def test_a_malformed_coco_entry_is_named_in_one_line(
    tmp_path: Path, edit: object, expected: str
) -> None:
    """Regression: each of these ended in an internal error (KeyError, TypeError,
    AttributeError) instead of a line naming the entry."""
    ann = _coco_set(tmp_path, tmp_path)
    doc = json.loads(ann.read_text())
    edit(doc)  # type: ignore[operator]
    ann.write_text(json.dumps(doc))
    with pytest.raises(DataSourceError) as err:
        load_data(f"coco:{ann}", input_specs=_specs())
    message = str(err.value)
    assert message.startswith(f"coco:{ann}: {expected}") and "\n" not in message
    assert "fix the annotation file" in message


def test_coco_boxes_outside_their_image_are_dropped_or_clipped_and_counted(
    tmp_path: Path,
) -> None:
    """A box mostly outside its image is dropped (clipping would make a box along the edge that
    no one drew); one partly outside is clipped; a rounding-sized overhang says nothing."""
    extra = [  # image 14 is 40 × 40
        {"id": 80, "image_id": 14, "category_id": 1, "bbox": [-500, -500, 2000, 2000]},
        {"id": 81, "image_id": 14, "category_id": 1, "bbox": [30, 30, 20, 10]},  # half inside
        {"id": 82, "image_id": 14, "category_id": 1, "bbox": [0, 0, 40.5, 40.5]},  # rounding
    ]
    ann = _coco_set(tmp_path, tmp_path, extra)
    data = load_data(f"coco:{ann}", input_specs=_specs())
    assert data.warnings[1] == (
        f"coco:{ann}: 1 boxes lie mostly outside their image (under half their area inside; "
        "first: annotation 80 on c4.png, bbox [-500, -500, 2000, 2000] in a 40×40 image): "
        "dropped, not clipped (clipped, each would become a box along the image's edge that no "
        "one drew; pycocotools would score it as annotated, a miss no prediction inside the "
        "image can match); fix their bbox if they are mistakes"
    )
    assert data.warnings[2].startswith(
        f"coco:{ann}: 1 boxes extend more than 1 pixel past their image's edge (first: "
        "annotation 81 on c4.png"
    )
    assert len(data.warnings) == 3
    labels = {
        round(float(x[0, 32, 32]) * 255): lab
        for s in (data.train, data.calibration, data.validation)
        for x, lab in zip(s.inputs[0], s.labels, strict=True)
    }
    np.testing.assert_allclose(
        labels[200], [[0, 0.75, 0.75, 1, 1], [0, 0, 0, 1, 1]], atol=1e-6
    )  # 81 clipped to its inside part, 82 to the image; 80 gone


def test_coco_without_a_usable_annotation_is_refused(tmp_path: Path) -> None:
    """Regression: every annotation skipped left 0 boxes, and runs scored mAP 0.0000."""
    ann = _coco_set(tmp_path, tmp_path)
    doc = json.loads(ann.read_text())
    for a in doc["annotations"]:
        a["category_id"] = 99
    ann.write_text(json.dumps(doc))
    with pytest.raises(DataSourceError) as err:
        load_data(f"coco:{ann}", input_specs=_specs())
    assert str(err.value) == (
        f"coco:{ann}: no ground-truth box to score: none of its 5 annotations is usable (1 crowd "
        "regions (iscrowd), 4 with a category_id that no category has); mAP over 0 boxes means "
        "nothing, so fix the annotations (category_id from categories, image_id from images, "
        "bbox [x, y, w, h] in pixels inside the image)"
    )


@pytest.mark.parametrize("fault", ["class ids", "no label files"])
def test_yolo_without_a_usable_label_is_refused(tmp_path: Path, fault: str) -> None:
    path = _yolo_set(tmp_path)
    for label in (tmp_path / "labels").rglob("*.txt"):
        if fault == "no label files":
            label.unlink()
        else:  # every class id ≥ nc (names has 2)
            label.write_text("".join(f"7{ln[1:]}\n" for ln in label.read_text().splitlines() if ln))
    with pytest.raises(DataSourceError) as err:
        load_data(f"yolo:{path}", input_specs=_specs())
    why = (
        "6 images have no label file"
        if fault == "no label files"
        else "10 label lines name a class ≥ 2 (names has 2); 1 images have no label file"
    )
    assert str(err.value).startswith(f"yolo:{path}: no ground-truth box to score: {why}; mAP")


def test_a_validation_split_without_boxes_is_refused(tmp_path: Path) -> None:
    path = _yolo_set(tmp_path)
    for label in (tmp_path / "labels" / "val").glob("*.txt"):
        label.unlink()
    with pytest.raises(DataSourceError) as err:
        load_data(f"yolo:{path}", input_specs=_specs())
    assert str(err.value).startswith(
        f"yolo:{path}: the validation split (2 images) holds no ground-truth box (the 4 boxes "
        "are all in the training and calibration images)"
    )
