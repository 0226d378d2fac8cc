"""The prune step end to end on real digits: fewer MACs, reload without pickle, honest notes."""

from pathlib import Path

import pytest
import torch

from helpers.recipes import run_steps, tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.errors import RecipeError
from modelpress.sources import models


def test_structured_prune_removes_channels_and_reloads_from_code(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    step = {
        "type": "prune",
        "ratio": 0.3,
        "finetune_epochs": 8,
        "lr": 1e-2,
        "teacher": "input",
        "round_to": 4,
    }
    record = run_steps(trained_checkpoint, tmp_path / "run", step)
    entry = record["steps"][0]
    assert entry["status"] == "ok", entry["error"]
    art, base = entry["artifact"], record["baseline"]
    assert art["macs"] <= base["macs"] / 2 and art["params"] < base["params"] / 2
    details = art["details"]
    assert details["teacher"] == "baseline" and details["finetune"]["epochs"] == 8
    assert 0.1 <= details["before_finetune"]["top1"] < art["metrics"]["top1"]  # what tuning won
    assert all(after % 4 == 0 for _, after in details["channels"].values())
    # a third of a 0.5-width dscnn's channels cut: 8 short epochs win back all but a few points
    assert art["metrics"]["top1"] >= base["metrics"]["top1"] - 0.06
    # the checkpoint holds only tensors and plain data: it loads with weights_only
    path = tmp_path / "run" / art["path"]
    saved = torch.load(path, weights_only=True)
    assert saved["modelpress"]["structure"] and saved["modelpress"]["model"] == "zoo:dscnn"
    rebuilt = models.build(models.inspect_source(str(path)))
    assert sum(p.numel() for p in rebuilt.parameters()) == art["params"]
    again = run_steps(trained_checkpoint, tmp_path / "run", step, resume=True)  # restored from file
    assert again["steps"][0]["artifact"]["metrics"] == art["metrics"]


def test_l1_unstructured_zeroes_weights_and_says_latency_does_not_drop(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    step = {"type": "prune", "method": "l1-unstructured", "ratio": 0.6, "finetune_epochs": 1}
    art = run_steps(trained_checkpoint, tmp_path / "run", step)["steps"][0]["artifact"]
    assert art["details"]["sparsity"] == pytest.approx(0.6, abs=0.01)
    assert any("does not speed up dense kernels" in n for n in art["notes"])
    assert art["latency_ms"]["median"] > 0  # measured, whatever it is


def test_gradual_schedule_raises_sparsity_each_epoch(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    step = {
        "type": "prune",
        "method": "gradual",
        "ratio": 0.7,
        "finetune_epochs": 4,
        "ramp_epochs": 3,
        "schedule": "polynomial",
    }
    art = run_steps(trained_checkpoint, tmp_path / "run", step)["steps"][0]["artifact"]
    history = art["details"]["finetune"]["history"]
    sparsity = [h["sparsity"] for h in history]
    # Zhu & Gupta: s_t = s_f + (s_i − s_f)(1 − t/n)³ over n = 2 steps, then held
    assert sparsity == pytest.approx([0.0, 0.7 - 0.7 * 0.5**3, 0.7, 0.7], abs=1e-6)
    assert art["details"]["finetune"]["best_epoch"] >= 3  # chosen among full-sparsity epochs
    assert art["details"]["sparsity"] == pytest.approx(0.7, abs=0.01)


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5, -0.2])
def test_ratio_outside_the_open_interval(ratio: float) -> None:
    with pytest.raises(RecipeError, match="ratio must be between 0 and 1 \\(exclusive\\)"):
        build_recipe(tiny_recipe("zoo:dscnn", steps=[{"type": "prune", "ratio": ratio}]))


def test_a_model_the_graph_cannot_handle_fails_with_the_module_named(tmp_path: Path) -> None:
    step = {"type": "prune", "ratio": 0.5, "finetune_epochs": 0}
    recipe = build_recipe(
        {
            "model": "zoo:text_encoder",
            "data": {"source": f"npz:{_tokens(tmp_path)}"},
            "evaluate": {"warmup": 1, "repeats": 3, "batch_sizes": [1]},
            "steps": [step],
        }
    )
    entry = pipeline.run(recipe, out=tmp_path / "run")["steps"][0]
    assert entry["status"] == "failed"
    assert "structured pruning cannot handle module 'layers." in entry["error"]
    assert "keep it with keep:" in entry["error"]


def _tokens(tmp_path: Path) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    path = tmp_path / "tokens.npz"
    np.savez(path, x=rng.integers(0, 100, (120, 16)).astype(np.int64), y=rng.integers(0, 2, 120))
    return path
