"""``io: uint8`` on ONNX: the model takes uint8 NHWC camera frames, converted in the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.errors import RecipeError
from modelpress.runtimes.adapt import to_pixels


def test_onnx_uint8_input_takes_frames_and_scores_as_the_float_model(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    steps = [
        {"type": "export", "format": "onnx", "id": "f32"},
        {"type": "export", "format": "onnx", "io": "uint8", "from": "baseline"},
        {
            "type": "export",
            "format": "onnx",
            "precision": "int8",
            "io": "uint8",
            "from": "baseline",
        },
    ]
    recipe = tiny_recipe(str(trained_checkpoint), steps=steps)
    recipe["data"] = {"source": "builtin:digits", "normalize": {"mean": [0.3], "std": [0.4]}}

    record = pipeline.run(build_recipe(recipe), out=tmp_path / "r")

    arts = {a["name"]: a for a in record["artifacts"]}
    fp32, pixels = arts["onnx-fp32"], arts["onnx-fp32-uint8-input"]
    session = ort.InferenceSession(str(tmp_path / "r" / pixels["path"]))
    (inp,) = session.get_inputs()
    assert inp.type == "tensor(uint8)" and inp.shape[1:] == [16, 16, 1]
    assert pixels["input_transform"] == {"kind": "uint8_nhwc", "mean": [0.3], "std": [0.4]}
    # the same images as 8-bit pixels: the float model's accuracy within a sample or two
    assert abs(fp32["metrics"]["top1"] - pixels["metrics"]["top1"]) <= 0.01
    assert pixels["verification"]["agreement"] >= 0.97
    assert arts["onnx-int8-uint8-input"]["status"] == "ok"
    # the graph does what the adapter assumes: pixels in, the normalised model's logits out
    x = np.random.default_rng(0).random((4, 1, 16, 16), dtype=np.float32)
    normalised = (x - 0.3) / 0.4
    frames = to_pixels([normalised], pixels["input_transform"])[0]
    assert frames.dtype == np.uint8 and frames.shape == (4, 16, 16, 1)
    quantized = ((np.round(x * 255) / 255 - 0.3) / 0.4).astype(np.float32)
    want = ort.InferenceSession(str(tmp_path / "r" / fp32["path"])).run(None, {"input": quantized})[
        0
    ]
    got = session.run(None, {inp.name: frames})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)

    # the file brought back as a deployed model: recognised as taking camera frames, fed the
    # data's images as pixels (its normalisation is inside), scoring as it did in the run
    again = tiny_recipe(str(tmp_path / "r" / pixels["path"]))
    del again["input_shape"]
    back = pipeline.run(build_recipe(again), out=tmp_path / "b")
    base = back["baseline"]
    assert base["input_transform"] == {"kind": "uint8_nhwc", "mean": None, "std": None}
    assert base["inputs"] == ["input:1,16,16,1:uint8"]
    assert abs(base["metrics"]["top1"] - pixels["metrics"]["top1"]) <= 0.01


def test_uint8_input_is_for_onnx_and_tflite_only() -> None:
    with pytest.raises(RecipeError, match="io uint8 applies to formats onnx and tflite"):
        build_recipe(
            {
                "model": "zoo:dscnn",
                "data": "builtin:digits",
                "steps": [{"type": "export", "format": "openvino", "io": "uint8"}],
            }
        )
