"""Detection through the CLI: a detector exported to INT8 ONNX with its decode tail in float,
measured by COCO mAP with NMS timed; bad input refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from helpers.cli import assert_one_line_error, run_cli
from helpers.recipes import ANALYSES_OFF

SMALL = {
    "model": "zoo:yolo_nano",
    "model_kwargs": {"width_mult": 0.25},
    "data": {"source": "builtin:digits-detect", "max_samples": 60},
    "input_shape": "1,3,64,64",
    "evaluate": {"repeats": 5, "warmup": 1, "batch_sizes": [1], **ANALYSES_OFF},
}


def _run(tmp_path: Path, recipe: dict) -> dict:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = run_cli("run", str(path), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((tmp_path / "run" / "record.json").read_text())


def test_a_detector_exports_to_int8_onnx_with_a_float_tail_and_is_measured_by_map(
    tmp_path: Path,
) -> None:
    record = _run(
        tmp_path,
        {**SMALL, "steps": [{"type": "export", "format": "onnx", "precision": "int8"}]},
    )

    assert record["task"] == "detection"
    base, int8 = record["baseline"], record["artifacts"][-1]
    for entry in (base, int8):
        metrics = entry["metrics"]
        assert {"map50_95", "map50", "precision", "recall"} <= set(metrics)
        assert len(metrics["per_class_ap"]) == 10
        assert 0.0 <= metrics["map50_95"] <= metrics["map50"] <= 1.0
        e2e = entry["end_to_end_ms"]
        assert e2e["median"] > 0 and 0 < e2e["postprocess_median"] < e2e["median"] * 10
        assert "NMS" in e2e["postprocess"]
    tail = int8["details"]["float_tail"]
    assert tail["nodes"] > 0 and "Sigmoid" in tail["ops"] and "Softplus" in tail["ops"]
    assert "decode tail" in tail["why"]
    assert [o["shape"] for o in int8["outputs"]] == [[84, 4], [84, 10]]  # 64 + 16 + 4 anchors
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Detection benchmark" in report and "mAP50-95" in report


def test_qat_distillation_and_pruning_take_a_detector(tmp_path: Path) -> None:
    """Each training step on a (tiny, untrained) detector: QAT keeps the decode tail float into
    its INT8 ONNX, distillation trains a narrower student beside one from scratch, structured
    pruning keeps the head's last convolutions, so the outputs keep their shapes."""
    student = {"student": "zoo:yolo_nano", "student_kwargs": {"width_mult": 0.125}}
    steps = [
        {"type": "qat", "epochs": 1, "teacher": "input", "id": "qat"},
        {"type": "export", "format": "onnx", "precision": "int8", "from": "qat"},
        {"type": "distill", **student, "epochs": 1, "compare_scratch": True, "from": "baseline"},
        {"type": "prune", "ratio": 0.3, "finetune_epochs": 1, "from": "baseline"},
    ]
    record = _run(tmp_path, {**SMALL, "steps": steps})

    by_type = {s["type"]: s for s in record["steps"] if s["type"] != "export"}
    assert all(s["status"] == "ok" for s in record["steps"]), [s["error"] for s in record["steps"]]
    qat = by_type["qat"]["artifact"]
    assert qat["details"]["float_tail"]["nodes"] > 0 and qat["details"]["teacher"]
    qat_onnx = record["steps"][1]["artifact"]
    assert qat_onnx["parent"] == qat["name"] and qat_onnx["precision"] == "int8"
    assert [o["shape"] for o in qat_onnx["outputs"]] == [[84, 4], [84, 10]]
    scratch = by_type["distill"]["scratch"]
    assert scratch["epochs"] == 1 and "map50_95" in scratch["metrics"]
    distilled = by_type["distill"]["artifact"]
    assert distilled["size_bytes"] < record["baseline"]["size_bytes"]
    pruned = by_type["prune"]["artifact"]
    assert pruned["params"] < record["baseline"]["params"]
    assert [o["shape"] for o in pruned["outputs"]] == [[84, 4], [84, 10]]
    for entry in (qat, qat_onnx, distilled, pruned):
        assert 0.0 <= entry["metrics"]["map50_95"] <= 1.0


def test_a_naive_int8_run_quantizes_the_tail_and_says_nothing_was_kept_float(
    tmp_path: Path,
) -> None:
    step = {"type": "export", "format": "onnx", "precision": "int8", "float_tail": False}
    record = _run(tmp_path, {**SMALL, "steps": [step]})

    assert "float_tail" not in record["artifacts"][-1]["details"]


def test_detection_on_class_labels_is_refused_in_one_line(tmp_path: Path) -> None:
    result = run_cli(
        "bench",
        "zoo:resnet_tiny",
        "--data",
        "builtin:digits",
        "--task",
        "detection",
        "--input-shape",
        "1,3,32,32",
    )

    assert_one_line_error(result, "builtin:digits", "boxes", "yolo:", "builtin:digits-detect")


def test_a_classifier_on_detection_data_names_the_shapes_and_both_layouts() -> None:
    result = run_cli(
        "bench",
        "zoo:resnet_tiny",
        "--data",
        "builtin:digits-detect",
        "--task",
        "detection",
        "--input-shape",
        "1,3,64,64",
    )

    assert_one_line_error(
        result, "outputs (2, 10)", "yolov8", "modelpress", "matches no detection layout"
    )


@pytest.mark.slow
def test_a_trained_detector_keeps_its_map_in_int8(tmp_path: Path) -> None:
    checkpoint = tmp_path / "nano.pt"
    trained = run_cli(
        "train",
        "zoo:yolo_nano",
        "--data",
        "builtin:digits-detect",
        "--input-shape",
        "1,3,96,96",
        "--epochs",
        "12",
        "--lr",
        "0.002",
        "--batch-size",
        "32",
        "--out",
        str(checkpoint),
    )
    assert trained.returncode == 0, trained.stderr
    result = run_cli(
        "quantize",
        str(checkpoint),
        "--data",
        "builtin:digits-detect",
        "--formats",
        "onnx",
        "--out",
        str(tmp_path / "q"),
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "q" / "record.json").read_text())
    entries = {e["name"]: e for e in record["artifacts"]}
    fp32, int8 = entries["onnx-fp32"]["metrics"], entries["onnx-int8"]["metrics"]
    assert record["baseline"]["metrics"]["map50_95"] > 0.3  # useful after 12 short epochs
    assert fp32["map50_95"] - int8["map50_95"] < 0.015
    assert entries["onnx-int8"]["status"] == "ok"
