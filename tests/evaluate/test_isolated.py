"""A native runtime measured in a process of its own: a crash there costs its artifact, never
the run (OpenVINO once segfaulted every detector run, leaving no record); its timings still
hold the machine's timing lock."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.recipes import tiny_recipe
from modelpress.core.artifact import Artifact
from modelpress.core.inputs import InputSpec
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.engine.measure import isolated
from modelpress.errors import StepError
from modelpress.sources.data import Split

SPEC = [InputSpec("input", (1, 4))]


def _break_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, body: str) -> None:
    """Every process started from here on finds ONNX Runtime's ``method`` replaced by ``body``
    (a ``sitecustomize`` first on its path): this process is untouched."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os, signal\n"
        "from modelpress.runtimes import ort\n"
        f"def broken(self, inputs):\n    {body}\n"
        f"ort.OnnxRuntime.{method} = broken\n"
    )
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(hook), path) if p))


def _tiny_onnx(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    path = tmp_path / "m.onnx"
    torch.onnx.export(model.eval(), (torch.zeros(2, 4),), str(path), dynamo=True,
                      input_names=["input"], dynamic_shapes=({0: torch.export.Dim("batch")},))  # fmt: skip
    return path, model


def _measure(path: Path, x: np.ndarray, guard: isolated.Guard) -> isolated.Measured:
    return isolated.measure(
        Artifact("m-onnx", "onnx", SPEC, path=path),
        Split([x], None),
        threads=1,
        eval_batch_size=16,
        batch_sizes=[1, 4],
        warmup=1,
        repeats=3,
        guard=guard,
    )


class _Lock:
    """A timing guard that notes when it was held."""

    def __init__(self) -> None:
        self.held: list[list[float]] = []

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.held.append([time.time()])
        try:
            yield
        finally:
            self.held[-1].append(time.time())


def test_the_child_times_under_the_lock_and_evaluates_every_sample(tmp_path: Path) -> None:
    path, model = _tiny_onnx(tmp_path)
    x = np.random.default_rng(0).standard_normal((40, 4)).astype(np.float32)
    lock = _Lock()

    measured = _measure(path, x, lock)

    ((start, end),) = lock.held  # taken once, given back
    assert start <= measured.window[0] <= measured.window[1] <= end
    np.testing.assert_allclose(
        measured.outputs[0], model(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5
    )
    assert [b["batch"] for b in measured.bench["latency_by_batch"]] == [1, 4]
    assert measured.runtime == "onnxruntime" and measured.own_memory["torch_loaded"] is False
    assert measured.own_memory["batch"] == 4 and measured.own_memory["mb"] > 0


def test_a_child_that_exits_mid_measurement_is_one_line_and_frees_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = _tiny_onnx(tmp_path)
    _break_runtime(tmp_path, monkeypatch, "prepare", "os._exit(3)")
    lock = _Lock()

    with pytest.raises(StepError) as caught:
        _measure(path, np.zeros((8, 4), np.float32), lock)

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("m-onnx: the runtime exited with code 3 while running it at batch")
    assert len(lock.held) == 1 and len(lock.held[0]) == 2  # released


def test_a_runtime_that_segfaults_costs_its_artifact_and_the_run_finishes(
    trained_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ONNX Runtime segfaults while evaluating the ONNX export: that node fails with the
    signal and what it was doing, the TorchScript export beside it is measured, and the run
    writes its record and reports."""
    _break_runtime(tmp_path, monkeypatch, "run_all", "os.kill(os.getpid(), signal.SIGSEGV)")
    steps = [{"type": "export", "format": "onnx"}, {"type": "export", "format": "torchscript"}]
    recipe = build_recipe(tiny_recipe(str(trained_checkpoint), steps=steps))

    record = pipeline.run(recipe, out=tmp_path / "run")

    onnx, script = record["steps"]
    assert onnx["status"] == "failed" and onnx["artifact"] is None
    assert onnx["error"] == (
        "onnx-fp32: the runtime crashed (signal 11, SIGSEGV) while evaluating it on the "
        "validation split, in the process measuring it; the other artifacts are measured as usual"
    )
    assert script["status"] == "ok" and record["baseline"]["status"] == "ok"
    saved = json.loads((tmp_path / "run/record.json").read_text())
    assert [s["status"] for s in saved["steps"]] == ["failed", "ok"]
    assert "the runtime crashed (signal 11, SIGSEGV)" in (tmp_path / "run/report.md").read_text()
