"""``modelpress demo --cascade``: two models trained, the fast one INT8, a certified cascade."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.cli import run_cli as cli


@pytest.mark.slow
def test_demo_cascade_builds_a_certified_bundle(tmp_path: Path) -> None:
    result = cli("demo", "--cascade", "--quick", "--out", str(tmp_path / "d"))

    assert result.returncode == 0, result.stderr
    assert "Cascade" in result.stdout and "upper bound" in result.stdout
    doc = json.loads((tmp_path / "d" / "bundle" / "cascade.json").read_text())
    assert [s["name"] for s in doc["stages"]] == [
        "fast (dscnn ×0.5, INT8)",
        "precise (resnet_tiny)",
    ]
    assert doc["stages"][0]["file"].endswith(".onnx")
    cert = doc["stages"][0]["certificate"]
    assert cert["certified"] and cert["upper_bound"] <= 0.05
    assert doc["validation"]["cascade"]["auc"] > 0.9
