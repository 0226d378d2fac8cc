from pathlib import Path

from helpers.recipes import run_steps, tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline


def test_qat_fine_tunes_converts_and_exports(trained_checkpoint: Path, tmp_path: Path) -> None:
    steps = [
        {"type": "qat", "epochs": 1, "lr": 1e-4},
        {"type": "export", "format": "onnx", "precision": "int8"},
    ]
    try:
        import litert_torch  # noqa: F401

        steps.append({"type": "export", "format": "tflite", "precision": "int8"})
    except ImportError:
        pass
    record = run_steps(trained_checkpoint, tmp_path / "run", *steps)  # half the digits
    assert all(s["status"] == "ok" for s in record["steps"]), [s["error"] for s in record["steps"]]
    qat = record["steps"][0]["artifact"]
    assert qat["precision"] == "int8" and qat["details"]["epochs"] == 1
    assert (tmp_path / "run/nodes" / record["steps"][0]["key"] / "qat-float.pt2").is_file()
    onnx = record["steps"][1]["artifact"]
    assert onnx["parent"] == "torch-int8-qat"
    assert onnx["metrics"]["top1"] >= record["baseline"]["metrics"]["top1"] - 0.02
    if len(steps) == 3:
        tfl = record["steps"][2]["artifact"]
        assert tfl["details"]["from_qat_weights"] is True
        assert any("litert-torch cannot prepare QAT" in n for n in tfl["notes"])


def test_unknown_qat_loss(trained_checkpoint: Path, tmp_path: Path) -> None:
    steps = [{"type": "qat", "epochs": 1, "loss": "mystery"}]
    record = pipeline.run(
        build_recipe(tiny_recipe(str(trained_checkpoint), steps=steps)), out=tmp_path / "run"
    )
    assert record["steps"][0]["status"] == "failed"
    assert "unknown loss 'mystery'" in record["steps"][0]["error"]
