"""The distill step end to end on real digits: student checkpoint, scratch comparison, resume."""

from pathlib import Path

import pytest
import torch

from helpers.recipes import run_steps
from modelpress.errors import StepError
from modelpress.sources import models

STUDENT = {"student": "zoo:dscnn", "student_kwargs": {"width_mult": 0.25}}


def test_distilled_student_is_smaller_records_scratch_and_reloads(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    step = {
        "type": "distill",
        **STUDENT,
        "epochs": 6,
        "lr": 2e-2,
        "compare_scratch": True,
        "feature_layers": ["blocks.1:blocks.1"],
        "feature_weight": 0.1,
    }
    record = run_steps(trained_checkpoint, tmp_path / "run", step)
    entry = record["steps"][0]
    assert entry["status"] == "ok", entry["error"]
    art, base = entry["artifact"], record["baseline"]
    assert art["params"] < base["params"] / 2
    assert art["metrics"]["top1"] >= 0.5  # 5× chance: a quarter-width student, 6 short epochs
    assert entry["scratch"]["metrics"]["top1"] > 0.1 and len(entry["scratch"]["history"]) == 6
    assert art["details"]["feature_layers"][0]["student"] == "blocks.1"
    path = tmp_path / "run" / art["path"]
    spec = models.inspect_source(str(path))
    assert spec.metadata["model"] == "zoo:dscnn" and spec.kwargs["width_mult"] == 0.25
    reloaded = models.build(spec)
    x = torch.randn(3, 1, 16, 16)
    again = run_steps(trained_checkpoint, tmp_path / "run", step, resume=True)
    assert again["steps"][0]["artifact"]["metrics"] == art["metrics"]  # reused, not retrained
    with torch.no_grad():
        assert reloaded(x).shape == (3, 10)


def test_progressive_alpha_and_two_stage_are_recorded(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    step = {
        "type": "distill",
        **STUDENT,
        "epochs": 3,
        "pretrain_epochs": 1,
        "lr": 1e-2,
        "alpha_start": 0.9,
        "alpha_end": 0.1,
    }
    record = run_steps(trained_checkpoint, tmp_path / "run", step)
    details = record["steps"][0]["artifact"]["details"]
    assert [h["alpha"] for h in details["history"]] == [0.9, 0.5, 0.1]
    assert details["pretrain"]["epochs"] == 1


def test_teacher_and_student_with_different_output_sizes(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    step = {
        "type": "distill",
        "student": "zoo:dscnn",
        "student_kwargs": {"width_mult": 0.25, "num_classes": 12},
        "epochs": 1,
    }
    entry = run_steps(trained_checkpoint, tmp_path / "run", step)["steps"][0]
    assert entry["status"] == "failed"
    assert "the teacher outputs 10 values per sample but the student 12" in entry["error"]


def test_unknown_feature_layer_stops_the_run_before_the_baseline_with_close_names(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    """It was a failed step, found after the baseline had been measured."""
    step = {"type": "distill", **STUDENT, "epochs": 1, "feature_layers": ["blocks.1:blokcs.1"]}
    with pytest.raises(StepError) as err:
        run_steps(trained_checkpoint, tmp_path / "run", step)
    assert str(err.value).startswith(
        "distill: feature_layers: the student has no layer 'blokcs.1'; close names: blocks.1"
    )
    assert not (tmp_path / "run" / "record.json").exists()  # no baseline measured


def test_qat_with_a_teacher_uses_the_kd_defaults(trained_checkpoint: Path, tmp_path: Path) -> None:
    steps = [
        {"type": "qat", "teacher": "input", "epochs": 1},
        {"type": "export", "format": "onnx", "precision": "int8"},
    ]
    record = run_steps(trained_checkpoint, tmp_path / "run", *steps)
    assert record["steps"][0]["status"] == "ok", record["steps"][0]["error"]
    details = record["steps"][0]["artifact"]["details"]
    assert details["teacher"] == {
        "model": "baseline",
        "temperature": 4.0,
        "alpha_hard": 0.3,
        "alpha_soft": 0.7,
    }
    assert details["lr"] == 1e-5
    base = record["baseline"]["metrics"]["top1"]
    assert record["steps"][0]["artifact"]["metrics"]["top1"] >= base - 0.03


def test_student_at_a_lower_input_resolution_exports_and_reloads(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    steps = [
        {
            "type": "distill",
            "student": "zoo:dscnn",
            "student_kwargs": {"width_mult": 0.5, "input_size": 12},
            "epochs": 6,
            "lr": 1e-2,
        },
        {"type": "export", "format": "onnx", "precision": "int8"},
    ]
    record = run_steps(trained_checkpoint, tmp_path / "run", *steps)
    student, onnx = (entry["artifact"] for entry in record["steps"])
    assert all(entry["status"] == "ok" for entry in record["steps"]), record["steps"]
    # the same width as the baseline at 12×12 instead of 16×16: MACs fall by about (12/16)²
    assert student["macs"] < 0.7 * record["baseline"]["macs"]
    assert student["metrics"]["top1"] > 0.3  # 3× chance after six short epochs
    assert onnx["verification"]["agreement"] >= 0.9  # the resize runs inside the ONNX graph
    reloaded = models.build(models.inspect_source(str(tmp_path / "run" / student["path"])))
    assert reloaded.size == (12, 12)
    with torch.no_grad():
        assert reloaded(torch.randn(2, 1, 16, 16)).shape == (2, 10)
