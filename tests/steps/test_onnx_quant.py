"""ONNX Runtime quantization through the pipeline, on the small trained dscnn (digits 16×16)."""

from pathlib import Path

import numpy as np
import pytest

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.engine.context import build_context
from modelpress.errors import StepError
from modelpress.sources.data import Split
from modelpress.steps.export.onnx_quant import _check_calibration


def _run(checkpoint: Path, out: Path, steps: list[dict], **extra: object) -> dict:
    return pipeline.run(build_recipe(tiny_recipe(str(checkpoint), steps=steps, **extra)), out=out)


@pytest.fixture(scope="module")
def quantized_run(
    trained_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict, Path]:
    steps = [
        {"type": "export", "format": "onnx"},
        {"type": "export", "format": "onnx", "precision": "int8"},
        {"type": "export", "format": "onnx", "precision": "fp16"},
        {"type": "export", "format": "onnx", "precision": "int8-dynamic"},
    ]
    out = tmp_path_factory.mktemp("q") / "run"
    return _run(trained_checkpoint, out, steps), out


@pytest.fixture
def quantized(quantized_run: tuple[dict, Path]) -> dict:
    return quantized_run[0]


def _by_name(record: dict) -> dict[str, dict]:
    return {a["name"]: a for a in record["artifacts"]}


def test_int8_is_smaller_keeps_accuracy_and_records_its_choices(quantized: dict) -> None:
    arts = _by_name(quantized)
    fp32, int8 = arts["onnx-fp32"], arts["onnx-int8"]
    assert int8["parent"] == "onnx-fp32" and int8["status"] == "ok"
    assert int8["size_bytes"] < fp32["size_bytes"]
    assert int8["verification"]["agreement"] >= 0.97
    assert int8["metrics"]["top1"] >= fp32["metrics"]["top1"] - 0.02
    act = int8["details"]["activation_type"]
    assert act["chosen"] in ("uint8", "int8") and set(act["batch1_ms"]) == {"uint8", "int8"}
    assert act["batch1_ms"][act["chosen"]] == min(act["batch1_ms"].values())
    assert int8["params"] == pytest.approx(fp32["params"], rel=0.01)  # int8 weights still count


def test_the_stem_stays_int8_unless_asked(quantized_run: tuple[dict, Path]) -> None:
    import onnx

    record, out = quantized_run
    int8 = _by_name(record)["onnx-int8"]
    assert "stem" not in int8["details"]
    graph = onnx.load(str(out / int8["path"])).graph
    first_conv = next(n for n in graph.node if n.op_type == "Conv")
    producers = {n.output[0]: n.op_type for n in graph.node}
    assert producers.get(first_conv.input[0]) == "DequantizeLinear"  # an int8 stem


def test_a_stem_kept_fp32_on_request(trained_checkpoint: Path, tmp_path: Path) -> None:
    steps = [
        {"type": "export", "format": "onnx"},
        {"type": "export", "format": "onnx", "precision": "int8", "stem": "fp32"},
    ]
    out = tmp_path / "run"
    int8 = _by_name(_run(trained_checkpoint, out, steps))["onnx-int8"]
    assert int8["details"]["stem"]["kept"] == "fp32"
    assert int8["details"]["stem"]["how"] == "asked in the recipe"
    assert int8["verification"]["agreement"] >= 0.97
    import onnx

    graph = onnx.load(str(out / int8["path"])).graph
    first_conv = next(n for n in graph.node if n.op_type == "Conv")
    assert first_conv.input[0] == graph.input[0].name  # the float stem reads the input itself


def test_fp16_keeps_accuracy_and_float_io(quantized: dict) -> None:
    arts = _by_name(quantized)
    fp16, fp32 = arts["onnx-fp16"], arts["onnx-fp32"]
    assert fp16["verification"]["max_abs_diff"] < 0.05
    assert fp16["metrics"]["top1"] == pytest.approx(fp32["metrics"]["top1"], abs=0.003)


def test_sizes_of_a_model_with_real_weights(trained_mlp: Path, tmp_path: Path) -> None:
    """int8 about 4× and fp16 about 2× smaller than fp32, once weights dominate the file."""
    steps = [
        {"type": "export", "format": "onnx"},
        {"type": "export", "format": "onnx", "precision": "int8"},
        {"type": "export", "format": "onnx", "precision": "fp16"},
    ]
    recipe = build_recipe(
        {
            "model": str(trained_mlp),
            "data": "builtin:digits",
            "steps": steps,
            "evaluate": {"warmup": 1, "repeats": 3, "batch_sizes": [1]},
        }
    )
    arts = _by_name(pipeline.run(recipe, out=tmp_path / "run"))
    fp32 = arts["onnx-fp32"]["size_bytes"]
    assert arts["onnx-int8"]["size_bytes"] <= 0.30 * fp32
    assert arts["onnx-fp16"]["size_bytes"] <= 0.51 * fp32
    assert arts["onnx-int8"]["metrics"]["top1"] >= arts["onnx-fp32"]["metrics"]["top1"] - 0.01


def test_dynamic_int8_says_what_it_left_in_fp32(quantized: dict) -> None:
    dyn = _by_name(quantized)["onnx-int8-dynamic"]
    assert dyn["status"] == "ok" and any("convolutions stay FP32" in n for n in dyn["notes"])


def test_fallback_keeps_sensitive_layers_until_the_bound_holds(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    steps = [
        {"type": "export", "format": "onnx"},
        {
            "type": "export",
            "format": "onnx",
            "precision": "int8",
            "activation_type": "uint8",
            "per_channel": False,
        },
    ]
    record = _run(trained_checkpoint, tmp_path / "run", steps, targets={"max_accuracy_drop": 0.0})
    int8 = _by_name(record)["onnx-int8"]
    fb = int8["details"]["fallback"]
    assert fb["bound_pt"] == 0.0
    if fb["needed"]:  # this small model sometimes quantizes losslessly: nothing to fall back then
        assert fb["kept_fp32"] and fb["layers_ranked"] >= len(fb["kept_fp32"])
        assert fb["met"] == (fb["final_drop_pt"] <= 0.0)
        assert fb["final_drop_pt"] <= fb["initial_drop_pt"]
    drop = -int8["metric_delta_pt"]
    assert fb["met"] is False or drop <= 1e-9


def test_more_calibration_samples_than_the_split_has(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    steps = [
        {"type": "export", "format": "onnx", "precision": "int8", "calibration_samples": 100000}
    ]
    record = _run(trained_checkpoint, tmp_path / "run", steps)
    step = record["steps"][0]
    assert step["status"] == "failed"
    assert "calibration_samples is 100000 but the calibration split has" in step["error"]


def test_calibration_data_of_the_wrong_shape_or_dtype(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    ctx, base = build_context(build_recipe(tiny_recipe(str(trained_checkpoint))))
    from modelpress.steps.export import ExportConfig
    from modelpress.steps.export.onnx import to_onnx

    art = to_onnx(base, ExportConfig(), ctx, tmp_path / "m.onnx")
    wrong_shape = Split([np.zeros((4, 1, 8, 8), np.float32)], None)
    with pytest.raises(
        StepError,
        match=r"calibration samples for input 'input' are float32 \(1, 8, 8\), the model wants float \(1, 16, 16\)",
    ):
        _check_calibration(wrong_shape, art.path, "export-onnx-int8")
    wrong_dtype = Split([np.zeros((4, 1, 16, 16), np.int64)], None)
    with pytest.raises(StepError, match="the model wants float"):
        _check_calibration(wrong_dtype, art.path, "export-onnx-int8")


def test_a_deployed_onnx_file_is_a_model_source(quantized_run: tuple[dict, Path]) -> None:
    from modelpress.engine.measure import analyze

    record, out = quantized_run
    recipe = build_recipe(tiny_recipe(str(out / "artifacts/model-int8.onnx")))
    ctx, base = build_context(recipe)
    assert base.format == "onnx" and base.precision == "int8"
    assert ctx.input_specs[0].shape == (1, 1, 16, 16)  # read from the file
    entry, _ = analyze(base, ctx)
    assert entry["runtime"] == "onnxruntime"
    assert entry["metrics"]["top1"] == pytest.approx(
        _by_name(record)["onnx-int8"]["metrics"]["top1"]
    )


def test_a_corrupt_onnx_file_as_model(tmp_path: Path) -> None:
    from modelpress.errors import ModelSourceError

    bad = tmp_path / "m.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelSourceError, match=r"m\.onnx: onnxruntime cannot load it"):
        build_context(build_recipe(tiny_recipe(str(bad))))
