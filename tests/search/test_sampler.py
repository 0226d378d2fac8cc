"""A space larger than max_trials: Optuna's TPE proposes the trials, the cheapest first, no
pipeline twice, and a resumed search proposes the same ones again (all reused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelpress.core.recipe import load_recipe
from modelpress.search.optimize import Search, Settings
from modelpress.search.sampler import constraints
from modelpress.search.space import check, pipelines

SPACE = {
    "prune": {"method": "structured", "ratio": [0, 0.3, 0.5, 0.7], "finetune_epochs": 1},
    "export": {"format": ["onnx"], "precision": ["fp32", "fp16", "int8"]},
}


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MLP trained a few epochs: an untrained one is at chance, and so `collapsed`,
    which would end its trials before the sampler is seen at work."""
    from modelpress.engine.train import train_and_save
    from modelpress.training import TrainConfig

    out = tmp_path_factory.mktemp("mlp") / "mlp.pt"
    recipe = load_recipe(
        {
            "model": "zoo:mlp",
            "model_kwargs": {"hidden": [32]},
            "data": "builtin:digits",
            "input_shape": "1,1,8,8",
        }
    )
    train_and_save(recipe, TrainConfig(epochs=4, lr=3e-3, seed=0), out)
    return out


def _search(out: Path, model: Path, resume: bool = False) -> dict:
    recipe = load_recipe(
        {
            "model": str(model),
            "data": "builtin:digits",
            "input_shape": "1,1,8,8",
            "evaluate": {"repeats": 5, "warmup": 1, "batch_sizes": [1]},
        }
    )
    settings = Settings({"max_accuracy_drop": 100.0}, check(SPACE), max_trials=4)
    Search(recipe, settings, out, resume=resume).run()
    return json.loads((out / "optimize.json").read_text())


def test_tpe_proposes_max_trials_distinct_pipelines_and_replays_them_on_resume(
    mlp: Path, tmp_path: Path
) -> None:
    assert len(pipelines(check(SPACE))) == 12
    first = _search(tmp_path / "s", mlp)
    trials = first["trials"]
    assert len(trials) == 4 and all(t["status"] == "done" for t in trials)
    assert len({t["id"] for t in trials}) == 4  # no pipeline twice
    assert "prune" not in trials[0]["pipeline"]  # the cheapest (nothing trained) first
    assert "Optuna's multi-objective TPE" in first["note"]

    again = _search(tmp_path / "s", mlp, resume=True)
    assert [t["id"] for t in again["trials"]] == [t["id"] for t in trials]
    assert all(t["reused"] for t in again["trials"])


def test_constraints_are_zero_or_less_when_met() -> None:
    point = {"loss_pt": 0.5, "latency_ms": 2.0, "size_mb": 3.0}
    targets = {"max_accuracy_drop": 1.0, "max_size_mb": 2.0, "min_speedup": 2.0}
    c = constraints(point, {"speedup": 2.5}, targets)
    assert c == {"max_accuracy_drop": -0.5, "max_size_mb": 1.0, "min_speedup": -0.5}
