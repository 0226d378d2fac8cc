"""Torch-level quantization (torchao PT2E static, dynamic, fp16) and its ONNX export."""

from pathlib import Path

import pytest
import torch

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.engine.context import build_context
from modelpress.errors import StepError
from modelpress.steps.quantize import capture


@pytest.fixture(scope="module")
def record(trained_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    steps = [
        {"type": "quantize", "method": "static"},
        {"type": "export", "format": "onnx", "precision": "int8"},
        {"type": "quantize", "method": "fp16"},
        {"type": "quantize", "method": "dynamic"},
    ]
    recipe = build_recipe(tiny_recipe(str(trained_checkpoint), steps=steps))
    return pipeline.run(recipe, out=tmp_path_factory.mktemp("tq") / "run")


def _arts(record: dict) -> dict[str, dict]:
    return {a["name"]: a for a in record["artifacts"]}


def test_every_method_runs_and_keeps_accuracy(record: dict) -> None:
    assert [s["status"] for s in record["steps"]] == ["ok"] * 4
    base = record["baseline"]["metrics"]["top1"]
    for name in ("torch-int8", "onnx-int8", "torch-fp16", "torch-int8-dynamic"):
        art = _arts(record)[name]
        assert art["metrics"]["top1"] >= base - 0.02, name
        assert art["verification"]["agreement"] >= 0.97, name


def test_pt2e_int8_exports_a_qdq_graph_that_onnxruntime_runs(record: dict) -> None:
    onnx_int8 = _arts(record)["onnx-int8"]
    assert onnx_int8["parent"] == "torch-int8" and onnx_int8["runtime"] == "onnxruntime"
    assert onnx_int8["size_bytes"] < record["baseline"]["size_bytes"]
    torch_int8 = _arts(record)["torch-int8"]
    assert torch_int8["path"].endswith("model.pt2")  # saved without pickled code
    assert any("reference" in n for n in torch_int8["notes"])


def test_resume_reloads_pt2_artifacts(trained_checkpoint: Path, tmp_path: Path) -> None:
    steps = [
        {"type": "quantize", "method": "static"},
        {"type": "export", "format": "onnx", "precision": "int8"},
    ]
    recipe = build_recipe(tiny_recipe(str(trained_checkpoint), steps=steps))
    pipeline.run(recipe, out=tmp_path / "run")
    changed = build_recipe(
        tiny_recipe(str(trained_checkpoint), steps=[steps[0], {**steps[1], "opset": 17}])
    )
    again = pipeline.run(changed, out=tmp_path / "run", resume=True)
    assert (
        again["steps"][1]["status"] == "ok"
        and again["steps"][1]["artifact"]["parent"] == "torch-int8"
    )


def test_a_model_torch_export_cannot_capture(trained_checkpoint: Path) -> None:
    ctx, _ = build_context(build_recipe(tiny_recipe(str(trained_checkpoint))))

    class Branchy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:  # data-dependent control flow
                return x.flatten(1)[:, :10]
            return -x.flatten(1)[:, :10]

    with pytest.raises(
        StepError, match=r"quantize-static: torch.export cannot capture the model: \w+"
    ):
        capture(Branchy(), ctx, "quantize-static")
