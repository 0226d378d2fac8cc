import sys
from pathlib import Path

import pytest

from modelpress.core import pipeline
from modelpress.core.recipe import build_recipe
from modelpress.errors import RuntimeUnavailableError
from modelpress.extras import require


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    with pytest.raises(
        RuntimeUnavailableError,
        match=r"needs the \[openvino\] extra: pip install 'modelpress\[openvino\]'",
    ):
        require("openvino", "openvino", "the OpenVINO format")


def test_openvino_fp32_and_int8(trained_mlp: Path, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    steps = [
        {"type": "export", "format": "openvino"},
        {"type": "export", "format": "openvino", "precision": "int8"},
    ]
    recipe = build_recipe(
        {
            "model": str(trained_mlp),
            "data": "builtin:digits",
            "steps": steps,
            "evaluate": {"warmup": 1, "repeats": 3, "batch_sizes": [1, 8]},
        }
    )
    record = pipeline.run(recipe, out=tmp_path / "run")
    fp32, int8 = record["artifacts"]
    assert fp32["runtime"] == "openvino" and fp32["companions"] == ["artifacts/model-fp32.bin"]
    assert fp32["verification"]["max_abs_diff"] < 1e-3
    assert int8["size_bytes"] <= 0.35 * fp32["size_bytes"]  # .xml + .bin both counted
    assert int8["details"]["method"] == "nncf.quantize (PTQ)"
    assert int8["verification"]["agreement"] >= 0.97
