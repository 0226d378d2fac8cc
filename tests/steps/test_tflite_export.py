"""TFLite through litert-torch, measured in the LiteRT interpreter."""

import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.engine.context import build_context
from modelpress.errors import ModelSourceError, RuntimeUnavailableError
from modelpress.extras import require
from modelpress.runtimes.litert import dequantize, quantize

litert = pytest.importorskip("litert_torch", reason="the [tflite] extra is not installed")


@pytest.fixture(scope="module")
def run(trained_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    steps = [
        {"type": "export", "format": "tflite", "precision": p}
        for p in ("fp32", "fp16", "int8-dynamic")
    ]
    # the stem pinned to int8: a float stem (measured faster at high resolution) makes the
    # model's input float32, and these tests check the int8 I/O
    steps.append({"type": "export", "format": "tflite", "precision": "int8", "stem": "int8"})
    out = tmp_path_factory.mktemp("tfl") / "run"
    return pipeline.run(
        build_recipe(tiny_recipe(str(trained_checkpoint), steps=steps)), out=out
    ), out


def test_every_precision_converts_and_keeps_accuracy(run: tuple[dict, Path]) -> None:
    record, _ = run
    base = record["baseline"]["metrics"]["top1"]
    arts = {a["name"]: a for a in record["artifacts"]}
    assert set(arts) == {"tflite-fp32", "tflite-fp16", "tflite-int8-dynamic", "tflite-int8"}
    assert arts["tflite-fp32"]["verification"]["max_abs_diff"] <= 1e-4
    for name, art in arts.items():
        assert art["runtime"] == "litert" and art["status"] == "ok", name
        assert art["metrics"]["top1"] >= base - 0.02, name
    assert arts["tflite-int8"]["details"]["io"] == {"inputs": ["int8"], "outputs": ["int8"]}
    assert arts["tflite-int8"]["details"]["calibration_samples"] > 0


def test_a_deployed_tflite_file_is_a_model_source(run: tuple[dict, Path]) -> None:
    from modelpress.engine.measure import analyze

    record, out = run
    ctx, base = build_context(build_recipe(tiny_recipe(str(out / "artifacts/model-int8.tflite"))))
    assert base.format == "tflite" and base.precision == "int8"
    entry, _ = analyze(base, ctx)
    int8 = next(a for a in record["artifacts"] if a["name"] == "tflite-int8")
    assert entry["metrics"]["top1"] == pytest.approx(int8["metrics"]["top1"])


def test_io_quantization_round_trip() -> None:
    detail = {"dtype": np.int8, "quantization": (0.05, -3)}
    x = np.linspace(-8, 8, 321, dtype=np.float32)  # ±8 / 0.05 - 3 overflows int8 both ways
    q = quantize(x, detail)
    assert q.dtype == np.int8 and q.min() == -128 and q.max() == 127  # clipped, not wrapped
    back = dequantize(q, detail)
    inside = (x >= (-128 + 3) * 0.05) & (x <= (127 + 3) * 0.05)
    assert np.abs(back[inside] - x[inside]).max() <= 0.025 + 1e-6  # half a step


def test_uint8_input_takes_camera_frames_and_keeps_accuracy(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    steps = [
        {"type": "export", "format": "tflite", "precision": "int8", "id": "float-in"},
        {
            "type": "export",
            "format": "tflite",
            "precision": "int8",
            "io": "uint8",
            "from": "baseline",
        },
    ]
    record = pipeline.run(
        build_recipe(tiny_recipe(str(trained_checkpoint), steps=steps)), out=tmp_path / "r"
    )
    arts = {a["name"]: a for a in record["artifacts"]}
    pixel = arts["tflite-int8-uint8-input"]
    assert pixel["status"] in ("ok", "degraded") and pixel["details"]["io"]["inputs"] == ["uint8"]
    assert pixel["input_transform"]["kind"] == "uint8_nhwc"
    assert pixel["inputs"][0].endswith(":uint8") and ",16,16,1:" in pixel["inputs"][0]
    drop = arts["tflite-int8"]["metrics"]["top1"] - pixel["metrics"]["top1"]
    assert drop <= 0.03  # the same model, fed 8-bit pixels of the same images
    assert pixel["precision"] == "int8"

    # the file as a deployed model: its raw uint8 input (no scale) is a camera frame, not a
    # quantized int8 input; it is fed pixels and scores as it did in the run
    recipe = tiny_recipe(str(tmp_path / "r" / pixel["path"]))
    del recipe["input_shape"]
    base = pipeline.run(build_recipe(recipe), out=tmp_path / "b")["baseline"]
    assert base["input_transform"]["kind"] == "uint8_nhwc"
    assert base["inputs"][0].endswith(":1,16,16,1:uint8")
    assert base["precision"] == "int8"
    assert abs(base["metrics"]["top1"] - pixel["metrics"]["top1"]) <= 0.01


def test_corrupt_tflite_file(tmp_path: Path) -> None:
    (tmp_path / "m.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(ModelSourceError, match="the LiteRT interpreter cannot load it"):
        build_context(build_recipe(tiny_recipe(str(tmp_path / "m.tflite"))))


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litert_torch", None)
    with pytest.raises(RuntimeUnavailableError, match=r"pip install 'modelpress\[tflite\]'"):
        require("litert_torch", "tflite", "the tflite format")
