"""Bad input, as a user types it: one line on stderr naming the file, field or flag and the fix,
exit code 2, and nothing written anywhere (every check runs before any work starts)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from helpers.cli import assert_one_line_error, run_cli

QUICK = ("--repeats", "3", "--warmup", "0", "--batch-sizes", "1")


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def _npz(path: Path, y: np.ndarray, x: np.ndarray | None = None) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(len(y), 8)).astype(np.float32) if x is None else x, y=y)
    return path


def _recipe(path: Path, **fields: object) -> Path:
    path.write_text(yaml.safe_dump({"model": "zoo:mlp", "data": "builtin:digits", **fields}))
    return path


# ---------------------------------------------------------------- output paths


def test_out_that_is_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file")
    before = _files(tmp_path)
    result = run_cli(
        "export", "zoo:mlp", "--data", "builtin:digits", "--out", "taken", cwd=tmp_path
    )
    assert_one_line_error(result, "--out taken: is a file", "choose another --out")
    assert _files(tmp_path) == before and (tmp_path / "taken").read_text() == "a file"


def test_out_where_nothing_can_be_written(tmp_path: Path) -> None:
    """A folder that cannot be written to. Tests run as root, whom chmod does not stop, so the
    unwritable place is a path under a regular file: no user can create anything there. (The
    read-only branch itself, os.access saying no, is a unit test: test_check_output_read_only.)"""
    (tmp_path / "plain").write_text("a file")
    recipe = _recipe(tmp_path / "r.yaml")
    before = _files(tmp_path)
    result = run_cli("run", str(recipe), "--out", "plain/runs/one", cwd=tmp_path)
    assert_one_line_error(result, "--out plain/runs/one: plain is a file", "choose another --out")
    result = run_cli(
        "quantize", "zoo:mlp", "--data", "builtin:digits", "--out", "plain/q", cwd=tmp_path
    )
    assert_one_line_error(result, "--out plain/q: plain is a file")
    assert _files(tmp_path) == before


def test_json_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    before = _files(tmp_path)
    result = run_cli(
        "bench", "zoo:mlp", "--data", "builtin:digits", "--json", "reports", *QUICK, cwd=tmp_path
    )
    assert_one_line_error(result, "--json reports: is a folder", "reports/bench.json")
    assert _files(tmp_path) == before


def test_train_out_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    before = _files(tmp_path)
    result = run_cli(
        "train", "zoo:mlp", "--data", "builtin:digits", "--out", "models", cwd=tmp_path
    )
    assert_one_line_error(result, "--out models: is a folder", "models/model.pt")
    assert _files(tmp_path) == before  # no models.checkpoints/ beside it either


def test_train_onto_an_existing_checkpoint_asks_for_force(tmp_path: Path) -> None:
    (tmp_path / "m.pt").write_bytes(b"an earlier checkpoint")
    before = _files(tmp_path)
    args = ("train", "zoo:mlp", "--data", "builtin:breast_cancer", "--epochs", "1", "--out")
    assert_one_line_error(
        run_cli(*args, "m.pt", cwd=tmp_path), "--out m.pt: already exists", "--force"
    )
    assert _files(tmp_path) == before
    assert (tmp_path / "m.pt").read_bytes() == b"an earlier checkpoint"
    forced = run_cli(*args, "m.pt", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "m.pt").read_bytes() != b"an earlier checkpoint"


# ---------------------------------------------------------------- labels


def test_negative_labels(tmp_path: Path) -> None:
    y = np.arange(40) % 3
    y[7] = -1
    data = _npz(tmp_path / "d.npz", y)
    result = run_cli("bench", "zoo:mlp", "--data", f"npz:{data}", *QUICK, cwd=tmp_path)
    assert_one_line_error(result, "d.npz: y[7] is -1", "class labels run 0, 1")


def test_labels_beyond_the_model_outputs(tmp_path: Path) -> None:
    data = _npz(tmp_path / "d.npz", np.arange(40) % 3)
    result = run_cli(
        "bench",
        "zoo:mlp",
        "--data",
        f"npz:{data}",
        "--model-kwargs",
        '{"num_classes": 2}',
        *QUICK,
        cwd=tmp_path,
    )
    assert_one_line_error(
        result, "zoo:mlp outputs 2 values", "labels up to 2 (3 classes)", "give the model 3 outputs"
    )


def test_multiclass_labels_for_a_binary_model(tmp_path: Path) -> None:
    data = _npz(tmp_path / "d.npz", np.arange(40) % 3)
    for kwargs in ('{"num_classes": 1}', "{}"):  # one logit, or two
        result = run_cli(
            "bench",
            "zoo:mlp",
            "--data",
            f"npz:{data}",
            "--task",
            "binary",
            "--model-kwargs",
            kwargs,
            *QUICK,
            cwd=tmp_path,
        )
        assert_one_line_error(
            result, "d.npz: labels run 0..2 (3 classes)", "task binary takes labels 0 and 1"
        )


def test_a_single_class(tmp_path: Path) -> None:
    data = _npz(tmp_path / "d.npz", np.zeros(40, dtype=np.int64))
    result = run_cli("bench", "zoo:mlp", "--data", f"npz:{data}", *QUICK, cwd=tmp_path)
    assert_one_line_error(result, "every sample is labelled 0 (40 samples)", "two classes")


# ---------------------------------------------------------------- NaN / Inf


def test_nonfinite_samples_refused_unless_the_recipe_allows_them(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    x[13, 2], x[21, 0] = np.nan, np.inf
    data = _npz(tmp_path / "d.npz", np.arange(40) % 2, x)
    result = run_cli("bench", "zoo:mlp", "--data", f"npz:{data}", *QUICK, cwd=tmp_path)
    assert_one_line_error(
        result, "d.npz: sample 13 holds NaN or Inf (2 of 40", "data.allow_nonfinite: true"
    )
    recipe = _recipe(
        tmp_path / "r.yaml",
        data={"source": "npz:d.npz", "allow_nonfinite": True},
        evaluate={"repeats": 3, "warmup": 0, "batch_sizes": [1]},
    )
    kept = run_cli("run", str(recipe), "--out", "run", cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert json.loads((tmp_path / "run/record.json").read_text())["data"]["nonfinite_samples"] == 2


# ---------------------------------------------------------------- shapes


def test_input_shape_whose_data_cannot_fit_in_memory(tmp_path: Path) -> None:
    before = _files(tmp_path)
    result = run_cli(
        "bench",
        "zoo:dscnn",
        "--data",
        "builtin:digits",
        "--input-shape",
        "1,3,30000,30000",
        *QUICK,
        cwd=tmp_path,
    )
    assert_one_line_error(
        result,
        "builtin:digits: 1797 samples at input shape 1,3,30000,30000 would take",
        "available",
    )
    assert _files(tmp_path) == before


def test_model_whose_first_activations_cannot_fit_in_memory(tmp_path: Path) -> None:
    """Small data, but the model resizes it to 300000×300000 in its graph (terabytes: more than
    any machine running this has, so the allocator would refuse it too if the check did not)."""
    result = run_cli(
        "bench",
        "zoo:dscnn",
        "--data",
        "builtin:digits",
        "--model-kwargs",
        '{"input_size": 300000}',
        *QUICK,
        cwd=tmp_path,
    )
    assert_one_line_error(result, "zoo:dscnn at input shape", "one forward", "GB of memory")


def test_input_shape_that_shrinks_images_to_nothing_warns(tmp_path: Path) -> None:
    result = run_cli(
        "bench",
        "zoo:dscnn",
        "--data",
        "builtin:digits",
        "--input-shape",
        "1,1,1,1",
        *QUICK,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "8×8 images shrunk to 1×1 (resize factor ×0.125)" in result.stdout


# ---------------------------------------------------------------- images


def _image_folder(root: Path) -> Path:
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_every_unreadable_image_in_one_message(tmp_path: Path) -> None:
    folder = _image_folder(tmp_path / "imgs")
    for i in range(12):
        (folder / "dog" / f"broken{i:02d}.png").write_bytes(b"not a png")
    result = run_cli(
        "bench", "zoo:dscnn", "--data", f"folder:{folder}", "--input-shape", "1,1,8,8", *QUICK
    )
    assert_one_line_error(
        result,
        "12 of 24 images cannot be read: dog/broken00.png, dog/broken01.png",
        "dog/broken09.png (not an image",
        "and 2 more; remove or replace them",
    )
    assert "broken10" not in result.stderr


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims width × height pixels in a few bytes (a decompression bomb's header)."""
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


def test_decompression_bomb_named(tmp_path: Path) -> None:
    folder = _image_folder(tmp_path / "imgs")
    _png_header_only(folder / "cat" / "bomb.png", 20000, 20000)
    result = run_cli(
        "bench", "zoo:dscnn", "--data", f"folder:{folder}", "--input-shape", "1,1,8,8", *QUICK
    )
    assert_one_line_error(result, "cat/bomb.png (a possible decompression bomb", "400000000 pixels")


# ---------------------------------------------------------------- resume, threads


@pytest.mark.parametrize("record", ['{"schema": 1, "ident', "[1, 2]"])
def test_resume_on_a_damaged_record(tmp_path: Path, record: str) -> None:
    recipe = _recipe(tmp_path / "r.yaml")
    (tmp_path / "run").mkdir()
    (tmp_path / "run/record.json").write_text(record)
    before = _files(tmp_path)
    result = run_cli("run", str(recipe), "--out", "run", "--resume", cwd=tmp_path)
    assert_one_line_error(result, "run/record.json: not a", "drop --resume and pass --force")
    assert _files(tmp_path) == before


def test_threads_above_the_cores_are_clamped_with_a_warning(tmp_path: Path) -> None:
    result = run_cli(
        "bench",
        "zoo:mlp",
        "--data",
        "builtin:digits",
        "--threads",
        "4096",
        "--json",
        "b.json",
        *QUICK,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    cores = os.cpu_count()
    assert f"--threads / evaluate.threads 4096 is more than this machine's {cores}" in result.stdout
    entry = json.loads((tmp_path / "b.json").read_text())
    assert entry["latency_ms"]["threads"] == cores


# ---------------------------------------------------------------- recipe and flag errors


def test_yaml_error_gives_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "model: zoo:mlp\ndata: builtin:digits\nsteps:\n  - type: export\n    format: [onnx\n"
    )
    assert_one_line_error(
        run_cli("run", str(tmp_path / "r.yaml")),
        "r.yaml:6:1: not valid YAML",
        "while parsing a flow sequence from line 5, column 13",
    )
    (tmp_path / "r.json").write_text('{"model": "zoo:mlp",\n "data": }')
    assert_one_line_error(run_cli("run", str(tmp_path / "r.json")), "r.json:2:10: not valid JSON")


def test_flag_errors_name_the_flag(tmp_path: Path) -> None:
    result = run_cli(
        "quantize", "zoo:mlp", "--data", "builtin:digits", "--formats", "onnx,onxx", cwd=tmp_path
    )
    assert_one_line_error(result, "--formats: Input should be 'onnx'", "(got 'onxx')")
    assert "steps." not in result.stderr
    result = run_cli(
        "prune", "zoo:mlp", "--data", "builtin:digits", "--importance", "weight", cwd=tmp_path
    )
    assert_one_line_error(result, "--importance: Input should be", "(got 'weight')")
    result = run_cli(
        "distill",
        "--teacher",
        "zoo:mlp",
        "--student",
        "zoo:mlp",
        "--data",
        "builtin:digits",
        "--alpha-start",
        "2",
        cwd=tmp_path,
    )
    assert_one_line_error(result, "--alpha-start: Input should be less than or equal to 1")
    result = run_cli("bench", "zoo:mlp", "--data", "builtin:digits", "--task", "bin", cwd=tmp_path)
    assert_one_line_error(result, "--task: Input should be", "(got 'bin')")
    assert _files(tmp_path) == set()


def test_steps_command_lists_every_step_and_the_unknown_key_message_points_there(
    tmp_path: Path,
) -> None:
    from modelpress.core.registry import step_types

    listing = run_cli("steps")
    assert listing.returncode == 0
    for name, cls in step_types().items():
        assert f"type: {name}" in listing.stdout
        for key, field in cls.model_fields.items():
            key = field.alias or key  # `from` (from_ in python)
            assert key == "type" or key in listing.stdout, (name, key)
    export = run_cli("steps", "export").stdout
    assert "opset" in export and "int (≥ 13, ≤ 23)" in export and "list[str]" in export
    assert "distill" not in export
    recipe = _recipe(tmp_path / "r.yaml", steps=[{"type": "export", "formt": "onnx"}])
    assert_one_line_error(
        run_cli("run", str(recipe)),
        "steps.0.formt: unknown key (did you mean 'format'?)",
        "`modelpress steps`",
    )
