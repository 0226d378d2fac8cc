"""Bad inputs that used to end in "internal error", in a silent guess, or only after the
baseline was measured: each is now one line naming the file or field and the fix, exit 2,
before any model work, or an explicit choice with a warning. The CLI runs in-process
(typer's CliRunner), as a user types it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers.cli import assert_one_line_error
from helpers.cli import run_cli as cli


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


# ---------------------------------------------------------------- one run per output


HOLD = """
import sys
from pathlib import Path
from modelpress.core.rundir import output_lock
with output_lock(Path(sys.argv[1]), folder=sys.argv[2] == "folder"):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes it: then the lock is released as a run ends
"""


@contextmanager
def _held(path: Path, folder: bool = True) -> Iterator[int]:
    """Another process holding ``path`` as a run would: its PID."""
    import subprocess
    import sys

    kind = "folder" if folder else "file"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc.pid
    finally:
        proc.communicate(timeout=60)  # stdin closed: the holder leaves its `with`


RECIPE = "model: zoo:mlp\ndata: builtin:digits\nsteps: [{type: export, format: onnx}]\n"
SECOND_RUNS = {
    "run": ("run", "r.yaml", "--out", "OUT"),
    "quantize": ("quantize", "zoo:mlp", "--data", "builtin:digits", "--out", "OUT"),
    "compare": ("compare", "zoo:mlp", "--data", "builtin:digits", "--out", "OUT"),
    "optimize": (
        *("optimize", "zoo:mlp", "--data", "builtin:digits", "--max-accuracy-drop", "1"),
        *("--out", "OUT"),
    ),
    "cascade build": (
        *("cascade", "build", "--data", "builtin:digits-manipulated"),
        *("--stage", "a.onnx", "--stage", "b.onnx", "--out", "OUT"),
    ),
}


@pytest.mark.parametrize("command", list(SECOND_RUNS))
def test_a_second_run_into_a_held_out_gets_one_line_naming_the_first(
    tmp_path: Path, command: str
) -> None:
    """Regression: two runs into one --out both went on, writing one directory at once."""
    (tmp_path / "r.yaml").write_text(RECIPE)
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else a for a in SECOND_RUNS[command]]
    with _held(out) as pid:
        result = cli(*args, cwd=tmp_path)
        assert_one_line_error(
            result,
            f"--out {out}: another modelpress run (PID {pid}, started ",
            "is writing there; wait for it to finish, or choose another --out",
        )
        assert _files(out) == {Path(".modelpress.lock")}  # nothing of the second run
    assert not out.exists()  # the first run's lock gone with it: a folder left empty removed


@pytest.mark.parametrize("command", ["video", "cascade run"])
def test_a_second_run_writing_the_same_results_file_is_refused(
    tmp_path: Path, command: str
) -> None:
    out = tmp_path / "results.jsonl"
    (tmp_path / "clip.mkv").write_bytes(b"")
    (tmp_path / "a.png").write_bytes(b"")
    if command == "video":
        args = ("video", "bundle", "clip.mkv", "--out", str(out))
    else:
        args = ("cascade", "run", "bundle", "a.png", "--out", str(out))
    with _held(out, folder=False) as pid:
        result = cli(*args, cwd=tmp_path)
    assert_one_line_error(result, f"--out {out}: another modelpress run (PID {pid}")
    assert not out.exists() and not (tmp_path / ".results.jsonl.lock").exists()


def test_cascade_build_out_at_a_file_is_one_line(tmp_path: Path) -> None:
    """Regression: "internal error: FileExistsError" after the stages were loaded."""
    (tmp_path / "bundle").write_text("a file")
    result = cli(
        *("cascade", "build", "--data", "builtin:digits-manipulated"),
        *("--stage", "a.onnx", "--stage", "b.onnx", "--out", "bundle"),
        cwd=tmp_path,
    )
    assert_one_line_error(result, "--out bundle: is a file", "choose another --out")


# ---------------------------------------------------------------- checks before the baseline


def _no_baseline(out: Path) -> None:
    """The baseline was never measured: its record (written once it is) does not exist."""
    assert not (out / "record.json").exists()


def test_bad_student_kwargs_stop_before_the_baseline(tmp_path: Path) -> None:
    """Regression: refused only after the baseline was measured, as a failed step, exit 0."""
    result = cli(
        *("distill", "--teacher", "zoo:mlp", "--student", "zoo:mlp", "--data", "builtin:digits"),
        *("--student-kwargs", '{"bogus": 1}', "--epochs", "1", "--out", "d"),
        cwd=tmp_path,
    )
    assert_one_line_error(
        result, "distill (student): zoo model 'mlp' has no argument 'bogus'; accepted: num_classes"
    )
    _no_baseline(tmp_path / "d")


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ("net.0:nope", "distill: feature_layers: the student has no layer 'nope'; close names:"),
        ("nope:net.0", "distill: feature_layers: the teacher has no layer 'nope'; close names:"),
        ("net.0", "--feature-layers: entry 'net.0' is not TEACHER_LAYER:STUDENT_LAYER"),
    ],
)
def test_bad_feature_layers_stop_before_the_baseline(
    tmp_path: Path, layers: str, expected: str
) -> None:
    result = cli(
        *("distill", "--teacher", "zoo:mlp", "--student", "zoo:mlp", "--data", "builtin:digits"),
        *("--feature-layers", layers, "--epochs", "1", "--out", "d"),
        cwd=tmp_path,
    )
    assert_one_line_error(result, expected)
    _no_baseline(tmp_path / "d")


def test_an_untrusted_distill_from_stops_before_the_baseline(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "PWNED"
    meta = {"model": "subprocess:getoutput", "model_kwargs": {"cmd": f"touch {marker}"}}
    torch.save({"state_dict": {}, "modelpress": meta}, tmp_path / "teacher.pt")

    result = cli(
        *("prune", "zoo:mlp", "--data", "builtin:digits", "--method", "l1-unstructured"),
        *("--distill-from", "teacher.pt", "--out", "p"),
        cwd=tmp_path,
    )

    assert_one_line_error(
        result,
        "prune-l1-unstructured (teacher): ",
        "asks to run the factory 'subprocess:getoutput'",
        "--trust-checkpoint-code",
    )
    _no_baseline(tmp_path / "p")
    assert not marker.exists()


def test_a_from_naming_a_step_whose_artifact_it_cannot_take_is_a_recipe_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "r.yaml").write_text(
        "model: zoo:mlp\ndata: builtin:digits\nsteps:\n"
        "  - {type: export, format: onnx, id: onnx}\n"
        "  - {type: prune, method: l1-unstructured, from: onnx}\n"
    )
    before = _files(tmp_path)

    result = cli("run", "r.yaml", "--out", "run", cwd=tmp_path)

    assert_one_line_error(
        result,
        "r.yaml: steps.1.from: `prune` takes an fp32 torch model, but 'onnx' (steps.0, "
        "`export`) makes an onnx model",
    )
    assert _files(tmp_path) == before
