import sys
from pathlib import Path

import pytest

from helpers.recipes import ANALYSES_OFF
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
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
            "evaluate": {"warmup": 1, "repeats": 3, "batch_sizes": [1, 8], **ANALYSES_OFF},
        }
    )
    record = pipeline.run(recipe, out=tmp_path / "run")
    fp32, int8 = record["artifacts"]
    assert fp32["runtime"] == "openvino" and fp32["companions"] == ["artifacts/model-fp32.bin"]
    assert fp32["verification"]["max_abs_diff"] < 1e-3
    assert int8["size_bytes"] <= 0.35 * fp32["size_bytes"]  # .xml + .bin both counted
    assert int8["details"]["method"] == "nncf.quantize (PTQ)"
    assert int8["verification"]["agreement"] >= 0.97


def test_a_transformer_encoder_is_quantized_as_a_transformer(tmp_path: Path) -> None:
    """NNCF's TRANSFORMER model type (SmoothQuant, attention ops kept float) for an encoder;
    the embeddings keep their direction."""
    pytest.importorskip("nncf")
    import numpy as np

    tokens = tmp_path / "tokens.npz"
    rng = np.random.default_rng(0)
    np.savez(tokens, x=rng.integers(0, 500, (160, 16)).astype(np.int64))
    recipe = build_recipe(
        {
            "model": "zoo:text_encoder",
            "model_kwargs": {"num_classes": 32, "vocab_size": 500, "dim": 32, "layers": 1},
            "data": f"npz:{tokens}",
            "steps": [
                {"type": "export", "format": "openvino"},
                {"type": "export", "format": "openvino", "precision": "int8"},
            ],
            "evaluate": {"repeats": 5, "batch_sizes": [1], **ANALYSES_OFF},
        }
    )
    int8 = {a["name"]: a for a in pipeline.run(recipe, out=tmp_path / "run")["artifacts"]}[
        "openvino-int8"
    ]
    assert int8["details"]["nncf"]["model_type"] == "transformer"
    assert int8["status"] == "ok" and int8["verification"]["cosine"] > 0.99
