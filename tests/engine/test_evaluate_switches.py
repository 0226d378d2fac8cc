"""``evaluate:`` switches for the costly analyses: each off, the record says "not measured
(evaluate.X off)" where the figure would be; the deployed file is still measured apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe, load_recipe
from modelpress.engine import pipeline
from modelpress.engine.measure import own_memory

OFF = {"own_process_memory": False, "int8_coverage": False, "races": False}


def test_analyses_switched_off_are_recorded_as_not_measured(
    trained_mlp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_child(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("a process for the own-process peak was started")

    monkeypatch.setattr(own_memory, "own_process_peak", no_child)
    steps = [
        {"type": "torchscript"},
        {"id": "fp32", "type": "export", "format": "onnx"},
        {"id": "int8", "type": "export", "format": "onnx", "precision": "int8"},
    ]
    recipe = tiny_recipe(str(trained_mlp), input_shape=None, steps=steps)
    recipe["evaluate"] |= OFF
    out = tmp_path / "run"
    pipeline.run(build_recipe(recipe), out=out)
    record = json.loads((out / "record.json").read_text())
    by_name = {a["name"]: a for a in record["artifacts"]}
    torchscript, fp32, int8 = (by_name[n] for n in ("torchscript-fp32", "onnx-fp32", "onnx-int8"))
    for entry in (torchscript, fp32, int8):  # a deployed file: no fresh process for its peak
        assert entry["status"] == "ok", entry["notes"]
        assert entry["peak_memory_own_process"] == {
            "skipped": "not measured (evaluate.own_process_memory off)"
        }
        assert entry["latency_ms"]["median"] > 0 and entry["peak_memory_mb"] > 0
    assert fp32["measured_in"] == "own_process"  # a runtime crash still costs one artifact
    assert int8["int8_coverage"] == {
        "runtime": "onnxruntime",
        "skipped": "not measured (evaluate.int8_coverage off)",
    }
    assert int8["vs_fp32"] == {
        "sibling": "onnx-fp32",
        "ratio": None,
        "not_compared": "not measured (evaluate.races off)",
    }
    assert record["head_to_head"] == {
        "skipped": "not measured (evaluate.races off)",
        "results": {},
    }
    assert record["recommendation"]["name"]  # chosen from the separate benchmarks
    # the switches travel with the run: its recipe.yaml says they were off
    assert load_recipe(out / "recipe.yaml").evaluate.races is False
    resumed = pipeline.run(load_recipe(out / "recipe.yaml"), out=out, resume=True)
    assert all(step["reused"] for step in resumed["steps"])  # the switches are its identity


def test_switches_left_on_keep_the_recipe_and_identity_as_before() -> None:
    recipe = build_recipe(tiny_recipe("zoo:mlp", analyses=True))
    assert not set(OFF) & set(recipe.to_dict()["evaluate"])  # earlier runs still --resume
    assert recipe.identity()["evaluate"] == recipe.to_dict()["evaluate"]
    off = build_recipe(tiny_recipe("zoo:mlp", evaluate={"races": False}))
    assert off.identity()["evaluate"]["races"] is False
