"""Measuring that does not mislead: sizes of one kind for every torch model, training on its own
threads, timings from a busy machine flagged, and a recommendation decided by finalists timed
side by side."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from helpers.recipes import run_steps
from modelpress.core.artifact import Artifact
from modelpress.core.inputs import InputSpec
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.engine.measure import analyze, benchmark, races
from modelpress.engine.measure.benchmark import (
    LatencyStats,
    benchmark_runtime,
    head_to_head,
    latency,
)
from modelpress.evaluate import targets
from modelpress.evaluate.size import artifact_size
from modelpress.runtimes.base import Runtime
from modelpress.runtimes.eager import TorchRuntime
from modelpress.training import Callback, TrainConfig, checkpoint_metadata, fit, save_checkpoint

SPEC = [InputSpec("input", (1, 4))]


# ---------------------------------------------------------------------- size
def test_a_model_saved_with_metadata_has_the_size_of_the_same_model_in_memory(
    ctx_and_model: tuple, tmp_path: Path
) -> None:
    ctx, base = ctx_and_model
    base_entry, base_out = analyze(base, ctx)
    path = tmp_path / "model.pt"
    history = [{"epoch": i, "loss": 1.0 / (i + 1), "note": "x" * 200} for i in range(50)]
    meta = checkpoint_metadata(ctx, {"model": "zoo:dscnn"}, history=history)
    save_checkpoint(path, base.module, meta)
    child = base.child("torch", "fp32", path, "copy", name="copy", module=base.module)

    entry, _ = analyze(child, ctx, parent_outputs=base_out, parent_entry=base_entry)

    assert entry["size_kind"] == base_entry["size_kind"] == "state_dict"
    assert entry["size_bytes"] == base_entry["size_bytes"]  # the metadata is not the model
    assert entry["file_bytes"] > entry["size_bytes"]  # the file on disk, metadata and all


def test_pruned_children_are_never_larger_than_their_parents(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    record = run_steps(
        trained_checkpoint,
        tmp_path / "run",
        {"type": "prune", "method": "structured", "ratio": 0.5, "finetune_epochs": 0},
        {"type": "prune", "method": "l1-unstructured", "ratio": 0.5, "finetune_epochs": 0},
    )
    entries = {e["name"]: e for e in [record["baseline"], *record["artifacts"]]}
    pruned, sparse = entries["pruned"], entries["sparse"]

    assert {e["size_kind"] for e in entries.values()} == {"state_dict"}
    assert pruned["size_bytes"] < 0.75 * entries["baseline"]["size_bytes"]  # half the channels
    assert sparse["parent"] == "pruned"
    assert sparse["size_bytes"] <= pruned["size_bytes"]  # zeros are stored, metadata is not


def test_a_deployed_file_is_sized_as_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\0" * 1234)
    size = artifact_size(Artifact("onnx-fp32", "onnx", SPEC, path=path))
    assert size == {"size_bytes": 1234, "size_kind": "file", "file_bytes": 1234}


def test_an_onnx_file_with_external_data_is_sized_with_it(tmp_path: Path) -> None:
    """A model past 2 GB keeps its weights beside the graph (external data): the size counts
    them (it counted the graph file alone: 3.4 MB for a 2.4 GB encoder)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((256, 256), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])],
        [weight],
    )
    path = tmp_path / "model.onnx"
    onnx.save(
        helper.make_model(graph), str(path), save_as_external_data=True,
        location="model.onnx.data", size_threshold=0,
    )  # fmt: skip
    data = tmp_path / "model.onnx.data"
    size = artifact_size(Artifact("onnx-fp32", "onnx", SPEC, path=path))
    assert data.stat().st_size >= 256 * 256 * 4
    assert size["size_bytes"] == path.stat().st_size + data.stat().st_size


# ---------------------------------------------------------------------- training threads
class _ThreadProbe(Callback):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_epoch_start(self, epoch: int, model: torch.nn.Module) -> dict[str, Any]:
        self.seen.append(torch.get_num_threads())
        return {}


def test_training_runs_on_its_threads_not_on_what_a_runtime_left(ctx_and_model: tuple) -> None:
    ctx, base = ctx_and_model
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # what the last runtime (a 1-thread benchmark, say) left
        probe = _ThreadProbe()
        # a few batches an epoch: the threads are the point, not what the model learns
        data = replace(
            ctx.data, train=ctx.data.train.head(256), validation=ctx.data.validation.head(64)
        )
        fit(base.module, data, ctx.task, TrainConfig(epochs=2), callbacks=[probe], threads=2)
        assert probe.seen == [2, 2]
        assert torch.get_num_threads() == 1  # put back as found
    finally:
        torch.set_num_threads(before)


def test_the_torch_runtime_puts_the_thread_count_back_when_closed() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        runtime = TorchRuntime(Artifact("m", "torch", SPEC, module=torch.nn.Linear(4, 2)), 1)
        assert torch.get_num_threads() == 1
        runtime.close()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------- busy machine
def test_a_wide_spread_makes_timings_unreliable() -> None:
    times = np.array([1.0] * 8 + [5.0, 5.0])  # p90 five times the median
    assert LatencyStats.of(times, 1, 2, []).unreliable == ["p90/p50 is 5.00 (> 2)"]
    assert LatencyStats.of(np.ones(10), 1, 2, []).unreliable == []


def test_a_load_above_the_thread_count_makes_timings_unreliable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def call() -> None:
        time.sleep(0.002)

    monkeypatch.setattr(benchmark.os, "getloadavg", lambda: (3.5, 1.0, 1.0))
    busy = latency(call, warmup=0, repeats=5, batch=1, threads=2)
    assert any("load average 3.50 (> 2 threads)" in r for r in busy.unreliable)

    monkeypatch.setattr(benchmark.os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    calm = latency(call, warmup=0, repeats=5, batch=1, threads=2)
    assert not any("load average" in r for r in calm.unreliable)


class _Sleeper(Runtime):
    """Sleeps ``ms`` per call and logs each call's name in a shared ``log``."""

    name = "sleeper"

    def __init__(self, label: str, ms: float, log: list[str], fixed: int | None = None) -> None:
        super().__init__(Artifact(label, "onnx", SPEC), threads=1)
        self.label, self.ms, self.log, self.fixed_batch = label, ms, log, fixed

    def run_all(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        self.log.append(self.label)
        time.sleep(self.ms / 1000)
        return [inputs[0]]


def _batch(n: int) -> list[np.ndarray]:
    return [np.zeros((n, 4), np.float32)]


def test_a_benchmark_record_carries_its_reliability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(benchmark.os, "getloadavg", lambda: (9.0, 1.0, 1.0))
    out = benchmark_runtime(
        _Sleeper("a", 0.1, [], fixed=1), _batch, batch_sizes=[1, 32], warmup=0, repeats=3
    )
    assert any("load average 9.00 (> 1 thread)" in r for r in out["latency_ms"]["unreliable"])
    assert out["batches_not_measured"] == [32]  # a fixed-batch artifact says what it skipped


# ---------------------------------------------------------------------- head-to-head
def test_head_to_head_runs_every_finalist_each_round_in_rotating_order() -> None:
    log: list[str] = []
    runtimes = {n: _Sleeper(n, ms, log) for n, ms in (("a", 3.0), ("b", 1.0), ("c", 2.0))}

    race = head_to_head(runtimes, _batch, batch=1, warmup=1, repeats=3, per_turn=1, settle=0)

    timed = log[3:]  # after one warm-up round
    assert timed == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert race["fastest"] == "b"
    assert set(race["results"]) == {"a", "b", "c"}
    for r in race["results"].values():
        assert r["median"] <= r["p90"] and r["repeats"] == 3 and r["batch"] == 1
    assert race["results"]["b"]["median"] < race["results"]["a"]["median"]


def test_head_to_head_turns_let_the_previous_runtime_settle_before_timing() -> None:
    """A turn is untimed calls, then timed ones: the previous runtime's spinning threads are
    absorbed by the untimed calls. Every artifact gets exactly ``repeats`` timed calls."""
    log: list[str] = []
    runtimes = {n: _Sleeper(n, 0.1, log) for n in ("a", "b")}

    race = head_to_head(runtimes, _batch, batch=1, warmup=0, repeats=3, per_turn=2, settle=1)

    # round 1: a ×(1 + 2), b ×(1 + 2); round 2 starts with b: b ×(1 + 1), a ×(1 + 1)
    assert log == ["a"] * 3 + ["b"] * 3 + ["b"] * 2 + ["a"] * 2
    assert all(r["repeats"] == 3 for r in race["results"].values())
    assert "1 untimed + 2 timed" in race["order"]


def _entry(name: str, median: float, size: int = 1000, delta: float = 0.0) -> dict[str, Any]:
    return {
        "name": name,
        "path": f"{name}.bin",
        "status": "ok",
        "latency_ms": {"median": median, "p90": median, "batch": 1},
        "size_bytes": size,
        "speedup": 1.0 / median,
        "metric_delta_pt": delta,
        "primary_metric": "top1",
        "metrics": {"top1": 0.9 + delta / 100},
    }


def test_finalists_are_within_the_window_and_meet_every_other_target() -> None:
    base = _entry("baseline", 1.0, size=4000)
    arts = [
        _entry("fast", 0.20),
        _entry("close", 0.29),
        _entry("slow", 0.40),  # over 1.5× the fastest
        _entry("inaccurate", 0.10, delta=-5.0),  # loses 5 pt: no finalist, however fast
        _entry("big", 0.21, size=9000),  # misses max_size_mb
    ]
    wanted = {"max_size_mb": 0.005, "min_speedup": 100.0}  # the speed target is the race's
    names = [e["name"] for e in targets.finalists(base, arts, wanted)]
    assert names == ["fast", "close"]


def test_the_recommendation_follows_the_head_to_head() -> None:
    base = _entry("baseline", 1.0)
    arts = [_entry("a", 0.20), _entry("b", 0.21)]  # a looked faster, minutes apart
    race = {
        "batch": 1,
        "repeats": 20,
        "results": {"a": {"median": 0.30, "p90": 0.31}, "b": {"median": 0.25, "p90": 0.26}},
        "fastest": "b",
    }
    rec, _ = targets.recommend(base, arts, {}, race)
    assert rec["name"] == "b"
    assert "head-to-head" in rec["why"] and "a 0.3 ms" in rec["why"]
    assert targets.decisions(base, arts, {}, race)["fastest"]["artifact"] == "b"
    assert targets.recommend(base, arts, {})[0]["name"] == "a"  # without it: the separate ones


def test_a_run_times_its_finalists_head_to_head_once_at_the_end(
    trained_mlp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(targets, "FINALIST_WINDOW", 1e9)  # every candidate is a finalist
    calls: list[list[str]] = []

    def counted(runtimes: dict[str, Runtime], *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(list(runtimes))
        return head_to_head(runtimes, *args, **kwargs)

    monkeypatch.setattr(races, "head_to_head", counted)
    recipe = build_recipe(
        {
            "model": str(trained_mlp),  # trained: an untrained one is at chance, no candidate
            "data": "builtin:digits",
            "evaluate": {
                **{"warmup": 1, "repeats": 5, "batch_sizes": [1, 8]},
                **{"own_process_memory": False, "int8_coverage": False},  # the races alone
            },
            "steps": [{"type": "export", "format": "onnx"}, {"type": "torchscript"}],
        }
    )
    record = pipeline.run(recipe, out=tmp_path / "run")

    assert calls == [["baseline", "onnx-fp32", "torchscript-fp32"]]
    race = record["head_to_head"]
    assert race["batch"] == 1 and race["repeats"] == 5
    assert set(race["results"]) == {"baseline", "onnx-fp32", "torchscript-fp32"}
    assert record["recommendation"]["name"] == race["fastest"]
