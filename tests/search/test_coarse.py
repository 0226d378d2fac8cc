"""Coarse then fine: every candidate scored on a few validation samples, those near the front
(meeting every constraint but accuracy, within the bound + margin) on all of them; both kept."""

from __future__ import annotations

import json
from pathlib import Path

from modelpress.core.recipe import load_recipe
from modelpress.search.optimize import Search, Settings
from modelpress.search.space import check

SPACE = {
    "prune": {"method": "structured", "ratio": [0, 0.5], "finetune_epochs": 1},
    "export": {"format": ["onnx"], "precision": ["fp32", "int8"]},
}
TARGETS = {"max_accuracy_drop": 100.0, "max_size_mb": 0.01}


def _search(out: Path, resume: bool = False) -> dict:
    recipe = load_recipe(
        {
            "model": "zoo:mlp",
            "model_kwargs": {"hidden": [64]},
            "data": "builtin:digits",
            "input_shape": "1,1,8,8",
            "evaluate": {"repeats": 5, "warmup": 1, "batch_sizes": [1]},
        }
    )
    Search(recipe, Settings(TARGETS, check(SPACE), coarse=100), out, resume=resume).run()
    return json.loads((out / "record.json").read_text())


def _view(record: dict) -> dict:
    return {
        e["name"]: (
            e["status"],
            e.get("accuracy_on"),
            e["metrics"]["top1"],
            e.get("metrics_coarse"),
        )
        for e in [record["baseline"], *record["artifacts"]]
    }


def test_only_candidates_near_the_front_get_the_whole_validation_split(tmp_path: Path) -> None:
    record = _search(tmp_path / "s")
    entries = [record["baseline"], *record["artifacts"]]
    fine = [e for e in entries if e.get("accuracy_on") == "all 360 validation samples"]
    coarse = [e for e in entries if e["status"] == "coarse"]
    assert record["baseline"] in fine
    for e in fine[1:]:  # meets the size bound, scored twice, both kept
        assert e["size_bytes"] / 1e6 <= TARGETS["max_size_mb"] and "metrics_coarse" in e
    for e in coarse:  # misses the size bound: scored on the first 100 only, never recommended
        assert e["size_bytes"] / 1e6 > TARGETS["max_size_mb"]
        assert e["accuracy_on"] == "the first 100 validation samples only"
    assert fine[1:] and coarse
    journal = json.loads((tmp_path / "s" / "optimize.json").read_text())
    rec = journal["result"]["recommendation"]
    assert rec and rec["name"] in {e["name"] for e in fine}
    # the fine figure is a top-1 over 360 samples: a multiple of 1/360
    for e in fine:
        assert abs(e["metrics"]["top1"] * 360 - round(e["metrics"]["top1"] * 360)) < 1e-6

    again = _search(tmp_path / "s", resume=True)
    assert _view(again) == _view(record)  # the fine pass redone from the coarse figures
    assert all(s.get("reused") for s in again["steps"])
