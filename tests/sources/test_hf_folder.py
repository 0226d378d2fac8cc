"""``hf:PATH``: a save_pretrained folder as a model source (offline, never the folder's code)."""

import json
from pathlib import Path

import pytest

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.engine.context import build_context
from modelpress.errors import ModelSourceError

transformers = pytest.importorskip("transformers")

MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]


def _vit_folder(root: Path) -> Path:
    config = transformers.ViTConfig(
        image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=10,
    )  # fmt: skip
    folder = root / "vit"
    transformers.ViTForImageClassification(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"size": {"height": 16, "width": 16}, "image_mean": MEAN, "image_std": STD,
                    "do_normalize": True})
    )  # fmt: skip
    return folder


def test_an_hf_folder_is_measured_and_exported_with_its_own_preprocessing(tmp_path: Path) -> None:
    folder = _vit_folder(tmp_path)
    steps = [{"type": "export", "format": "onnx"}]
    recipe = tiny_recipe(f"hf:{folder}", steps=steps, input_shape=None)
    record = pipeline.run(build_recipe(recipe), out=tmp_path / "run")
    base = record["baseline"]
    assert base["details"]["preprocess"] == {
        "from": "preprocessor_config.json", "size": [16, 16], "mean": MEAN, "std": STD,
        "applied": True,
    }  # fmt: skip
    assert base["outputs"] == [{"name": "output", "shape": [10]}]  # the logits, one tensor
    onnx = record["artifacts"][0]
    assert onnx["status"] in ("ok", "collapsed")  # random weights: at chance, said so
    assert onnx["verification"]["cosine"] > 0.999
    # the data was fed at the folder's size and statistics: 3×16×16, normalised per channel
    ctx, _ = build_context(build_recipe(recipe))
    x = ctx.data.validation.inputs[0]
    assert x.shape[1:] == (3, 16, 16)
    assert abs(float(x[:, 0].mean()) - float(x[:, 2].mean())) > 0.1  # per-channel mean/std


def test_an_hf_folder_with_remote_code_or_no_weights_is_one_line(tmp_path: Path) -> None:
    folder = _vit_folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "m.Net"}}))
    with pytest.raises(ModelSourceError) as err:
        build_context(build_recipe({"model": f"hf:{folder}", "data": "builtin:digits"}))
    assert "never runs a model folder's code" in str(err.value) and "\n" not in str(err.value)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelSourceError) as err:
        build_context(build_recipe({"model": f"hf:{folder}", "data": "builtin:digits"}))
    assert "no weights file" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ModelSourceError, match=r"no config\.json"):
        build_context(build_recipe({"model": f"hf:{tmp_path}", "data": "builtin:digits"}))
