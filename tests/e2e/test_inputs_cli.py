"""Bad inputs that used to end in "internal error", in a silent guess, or only after the
baseline was measured: each is now one line naming the file or field and the fix, exit 2,
before any model work, or an explicit choice with a warning. The CLI runs in-process
(typer's CliRunner), as a user types it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from modelpress.cli.app import app


@contextmanager
def _cwd(path: Path | None) -> Iterator[None]:
    before = Path.cwd()
    if path is not None:
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def cli(*args: str, cwd: Path | None = None) -> Result:
    with _cwd(cwd):
        return CliRunner().invoke(app, list(args))


def assert_one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


# ---------------------------------------------------------------- recipe files


def test_a_recipe_that_is_not_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    recipe = tmp_path / "latin1.yaml"
    recipe.write_bytes("model: zoo:mlp\ndata: builtin:digits\nname: café\n".encode("latin-1"))
    before = _files(tmp_path)

    result = cli("run", str(recipe), "--out", str(tmp_path / "run"))

    assert_one_line_error(
        result, f"{recipe}:3:10: not UTF-8 text (byte 0xe9)", "save the recipe as UTF-8"
    )
    assert _files(tmp_path) == before


# ---------------------------------------------------------------- detection data


def _coco(root: Path, categories: list[dict], annotations: list[dict]) -> Path:
    import numpy as np
    from PIL import Image

    images = []
    for i in range(6):
        Image.fromarray(np.full((40, 40, 3), 30 * i, np.uint8)).save(root / f"{i}.png")
        images.append({"id": i, "file_name": f"{i}.png", "width": 40, "height": 40})
    path = root / "ann.json"
    doc = {"images": images, "annotations": annotations, "categories": categories}
    path.write_text(json.dumps(doc))
    return path


DETECT = ("--input-shape", "1,3,64,64", "--repeats", "3", "--warmup", "0", "--batch-sizes", "1")


def test_detection_data_without_ground_truth_stops_before_any_measurement(tmp_path: Path) -> None:
    """Regression: every annotation naming a category the file does not have left no box, and
    `bench` measured the model and printed mAP 0.0000 with exit 0."""
    boxes = [{"id": k, "image_id": k % 6, "category_id": 5, "bbox": [2, 2, 9, 9]} for k in range(8)]
    ann = _coco(tmp_path, [{"id": 1, "name": "one"}], boxes)

    result = cli("bench", "zoo:yolo_nano", "--data", f"coco:{ann}", *DETECT, cwd=tmp_path)

    assert_one_line_error(
        result,
        f"coco:{ann}: no ground-truth box to score: none of its 8 annotations is usable (8 with "
        "a category_id that no category has)",
    )


def test_a_coco_image_with_a_string_width_is_one_line(tmp_path: Path) -> None:
    """Regression: "internal error: TypeError: unsupported operand type(s) for /"."""
    boxes = [{"id": k, "image_id": k % 6, "category_id": 1, "bbox": [2, 2, 9, 9]} for k in range(8)]
    ann = _coco(tmp_path, [{"id": 1, "name": "one"}], boxes)
    doc = json.loads(ann.read_text())
    doc["images"][2]["width"] = "40"
    ann.write_text(json.dumps(doc))

    result = cli("bench", "zoo:yolo_nano", "--data", f"coco:{ann}", *DETECT, cwd=tmp_path)

    assert_one_line_error(
        result, f'coco:{ann}: images[2].width is "40" (a string)', "fix the annotation file"
    )


# ---------------------------------------------------------------- class labels


def test_a_stray_label_stops_before_a_1001_class_model_is_built(tmp_path: Path) -> None:
    import numpy as np

    y = np.arange(200) % 10
    y[37] = 1000
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(200, 8)).astype(np.float32), y=y)

    result = cli("bench", "zoo:mlp", "--data", "npz:d.npz", *DETECT[2:], cwd=tmp_path)

    assert_one_line_error(result, "d.npz: label 1000 (1 of 200 samples)", "a typo? Fix y")
