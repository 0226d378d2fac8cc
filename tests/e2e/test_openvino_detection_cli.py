"""A detector exported to OpenVINO, through the CLI: OpenVINO 2026.4.1 segfaulted on it (exit
139, no record) when evaluation, the benchmark and the end-to-end timing ran one compiled model
at several batch sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from helpers.cli import run_cli as cli
from helpers.recipes import ANALYSES_OFF

pytest.importorskip("openvino")


@pytest.mark.slow
def test_a_detector_exported_to_openvino_is_measured_and_recorded(tmp_path: Path) -> None:
    recipe = {
        "model": "zoo:yolo_nano",
        "data": "builtin:digits-detect",  # 300 validation images: 4 batches of 64, one of 44
        "evaluate": {"repeats": 3, "warmup": 1, "batch_sizes": [1, 32], **ANALYSES_OFF},
        "steps": [{"type": "export", "format": "openvino"}],
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))

    result = cli("run", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"))

    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    record = json.loads((tmp_path / "run/record.json").read_text())
    (openvino,) = record["artifacts"]
    assert openvino["status"] == "ok" and openvino["runtime"] == "openvino"
    assert openvino["metrics"]["samples"] == 300
    e2e = openvino["end_to_end_ms"]
    assert e2e["model_median"] == openvino["latency_ms"]["median"] <= e2e["median"]
