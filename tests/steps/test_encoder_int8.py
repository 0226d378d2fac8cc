"""A transformer sentence encoder (fidelity task: its outputs are embeddings) through dynamic
INT8: the embedding table is quantized too, and verification judges cosine, not the argmax."""

import numpy as np
import pytest

from helpers.recipes import ANALYSES_OFF
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline


@pytest.fixture(scope="module")
def encoder_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("encoder")
    tokens = root / "tokens.npz"
    rng = np.random.default_rng(0)
    np.savez(tokens, x=rng.integers(0, 8000, (200, 16)).astype(np.int64))  # no labels: fidelity
    recipe = build_recipe(
        {
            "model": "zoo:text_encoder",
            # a 64-wide embedding; the 8000-token table is most of the model, as in BERT-style
            # encoders
            "model_kwargs": {"num_classes": 64, "vocab_size": 8000, "dim": 64, "layers": 1},
            "data": f"npz:{tokens}",
            "steps": [
                {"type": "export", "format": "onnx"},
                {"type": "export", "format": "onnx", "precision": "int8-dynamic"},
            ],
            "evaluate": {"repeats": 5, "batch_sizes": [1], **ANALYSES_OFF},
        }
    )
    return pipeline.run(recipe, out=root / "run")


def test_dynamic_int8_quantizes_the_embedding_table(encoder_run: dict) -> None:
    arts = {a["name"]: a for a in encoder_run["artifacts"]}
    fp32, int8 = arts["onnx-fp32"], arts["onnx-int8-dynamic"]
    assert encoder_run["task"] == "fidelity"
    # MatMul weights alone would leave the table in FP32 (~80 % of the file)
    assert int8["size_bytes"] < 0.35 * fp32["size_bytes"]
    assert int8["metrics"]["cosine"] > 0.99


def test_embeddings_are_verified_by_cosine_not_argmax(encoder_run: dict) -> None:
    int8 = {a["name"]: a for a in encoder_run["artifacts"]}["onnx-int8-dynamic"]
    verification = int8["verification"]
    assert verification["judged_by"] == "cosine"
    assert verification["threshold"] == 0.99
    assert verification["cosine"] > 0.99
    assert int8["status"] == "ok", int8["notes"]


def test_transformer_fusions_are_tried_and_the_faster_kept(encoder_run: dict) -> None:
    int8 = {a["name"]: a for a in encoder_run["artifacts"]}["onnx-int8-dynamic"]
    fusion = int8["details"]["transformer_fusion"]
    # onnxscript's ORT fusions match the dynamo export: attention and the layer norms fuse
    assert fusion["fusions"].get("sdpa", 0) >= 1
    assert fusion["fusions"].get("skip_layer_normalization", 0) >= 1
    timed = fusion["batch1_ms"]
    assert set(timed) == {"fused", "unfused"} and all(v > 0 for v in timed.values())
    sizes = fusion["size_bytes"]
    fused_wins = (
        timed["fused"] < 0.95 * timed["unfused"] and sizes["fused"] <= 1.02 * sizes["unfused"]
    )
    assert fusion["kept"] == ("fused" if fused_wins else "unfused")
    assert int8["metrics"]["cosine"] > 0.99  # whichever was kept stays faithful


def test_a_cnn_gets_no_fused_transformer_candidate(tmp_path) -> None:
    import torch

    from modelpress.steps.export.onnx_dynamic import _fuse_transformer

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten())
    src = tmp_path / "cnn.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 8, 8),), str(src), dynamo=True)
    fused, _ = _fuse_transformer(src, tmp_path)
    assert fused is None
