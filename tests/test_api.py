"""The Python API on a module in memory (``modelpress.compress`` / ``quantize``)."""

from pathlib import Path

import numpy as np
import pytest
import torch

import modelpress as mp
from helpers.recipes import tiny_recipe, train_mlp
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.engine.context import build_context
from modelpress.errors import ModelSourceError

SHAPE = "1,64"
QUICK = tiny_recipe("x")["evaluate"]  # few repeats, the costly analyses off


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, torch.nn.Module]:
    path = train_mlp(tmp_path_factory.mktemp("m") / "mlp.pt", "builtin:digits", SHAPE, [32], 3)
    _, base = build_context(
        build_recipe({"model": path, "data": "builtin:digits", "input_shape": SHAPE})
    )
    return path, base.module


def test_quantize_on_a_module_in_memory_gives_the_figures_of_the_same_run_from_its_file(
    trained: tuple[str, torch.nn.Module], tmp_path: Path
) -> None:
    path, module = trained
    before = {k: v.clone() for k, v in module.state_dict().items()}
    result = mp.quantize(
        module, "builtin:digits", method="dynamic", formats=["onnx"], out=tmp_path / "api",
        input_shape=SHAPE, evaluate=QUICK,
    )  # fmt: skip
    steps = mp.api.quantize_steps("dynamic", ["onnx"], {})
    recipe = tiny_recipe(path, input_shape=SHAPE, steps=steps, evaluate=QUICK)
    record = pipeline.run(build_recipe(recipe), out=tmp_path / "cli")
    assert isinstance(result.record, mp.RunRecord)
    assert [a.name for a in result.artifacts] == [a["name"] for a in record["artifacts"]]
    for name in ("baseline", "onnx-fp32", "onnx-int8-dynamic"):
        ours = result.artifact(name)
        theirs = (
            record["baseline"]
            if name == "baseline"
            else next(a for a in record["artifacts"] if a["name"] == name)
        )
        assert ours.status == theirs["status"] == "ok", name
        assert ours.metrics["top1"] == theirs["metrics"]["top1"] > 0.5, name
        assert ours.params == theirs["params"] and ours.macs == theirs["macs"], name
        assert ours.latency_p50_ms is not None and ours.latency_p50_ms > 0
    int8 = result.artifact("onnx-int8-dynamic")
    assert result.path(int8.name).is_file() and int8.size_mb < result.artifact("onnx-fp32").size_mb
    for key, value in module.state_dict().items():  # the caller's module is never changed
        assert torch.equal(value, before[key]), key
    from modelpress.sources.memory import held

    source = result.record.model["source"]
    assert source.startswith("memory:MLP@")
    assert held(source) is None  # nothing keeps the caller's module alive after the run


def test_arrays_and_a_dataloader_are_data_and_give_the_same_baseline(
    trained: tuple[str, torch.nn.Module], tmp_path: Path
) -> None:
    from sklearn.datasets import load_digits

    _, module = trained
    digits = load_digits()
    x, y = (digits.data / 16.0).astype(np.float32), digits.target
    arrays = mp.compress(module, (x, y), out=tmp_path / "arrays", evaluate=QUICK)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=100
    )
    batches = mp.compress(module, loader, out=tmp_path / "loader", evaluate=QUICK)
    a, b = arrays.baseline, batches.baseline
    assert a.metrics["samples"] == b.metrics["samples"] > 0.19 * len(y)  # the validation share
    assert a.metrics["top1"] == b.metrics["top1"]


def test_a_recipe_file_cannot_name_a_module_in_memory(tmp_path: Path) -> None:
    from modelpress.core.recipe import load_recipe
    from modelpress.engine.context import build_context

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: memory:Net@0123456789abcdef\ndata: builtin:digits\n")
    with pytest.raises(ModelSourceError) as err:
        build_context(load_recipe(recipe))
    assert "a recipe file cannot name one" in str(err.value)
    with pytest.raises(mp.ModelpressError, match=r"model: an nn\.Module or a model source"):
        mp.compress(42, "builtin:digits", out=tmp_path / "x")


def test_a_second_call_into_the_same_out_needs_resume_or_force(
    trained: tuple[str, torch.nn.Module], tmp_path: Path
) -> None:
    _, module = trained
    first = mp.compress(
        module, "builtin:digits", out=tmp_path / "r", input_shape=SHAPE, evaluate=QUICK
    )
    with pytest.raises(mp.ModelpressError, match="--force"):
        mp.compress(module, "builtin:digits", out=tmp_path / "r", input_shape=SHAPE, evaluate=QUICK)
    again = mp.compress(
        module, "builtin:digits", out=tmp_path / "r", input_shape=SHAPE, evaluate=QUICK,
        resume=True,
    )  # fmt: skip
    assert again.baseline.metrics["top1"] == first.baseline.metrics["top1"]
