"""Peak memory of each deployed artifact measured in a process that loads only its runtime."""

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.recipes import tiny_recipe
from modelpress.core.artifact import Artifact
from modelpress.core.inputs import InputSpec
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.engine.measure import own_memory as analyze_module
from modelpress.engine.measure.own_process import own_process_peak
from modelpress.report import format as fmt
from modelpress.report import sections, write_reports

pytest.importorskip("litert_torch", reason="the [tflite] extra is not installed")


@pytest.fixture(scope="module")
def run(trained_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """A run exporting the trained DS-CNN to ONNX FP32 and TFLite INT8, and its directory."""
    steps = [
        {"type": "export", "format": "onnx"},
        {"type": "export", "format": "tflite", "precision": "int8"},
    ]
    out = tmp_path_factory.mktemp("own") / "run"
    recipe = tiny_recipe(str(trained_checkpoint), analyses={"own_process_memory"}, steps=steps)
    recipe = build_recipe(recipe)
    return pipeline.run(recipe, out=out), out


@pytest.fixture
def record(run: tuple[dict, Path]) -> dict:
    return run[0]


def _spec() -> list[InputSpec]:
    return [InputSpec("x", (1, 8), "float32")]


def _batch(n: int) -> list[np.ndarray]:
    return [np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)]


def test_deployed_artifacts_report_a_small_own_process_peak_without_torch(record: dict) -> None:
    arts = {a["name"]: a for a in record["artifacts"]}
    assert set(arts) == {"onnx-fp32", "tflite-int8"}
    for name, runtime in (("onnx-fp32", "onnxruntime"), ("tflite-int8", "litert")):
        art = arts[name]
        own = art["peak_memory_own_process"]
        assert own["runtime"] == runtime, own
        assert own["torch_loaded"] is False and "torch" not in own["libraries"], own
        assert 0 < own["idle_mb"] <= own["loaded_mb"] <= own["mb"], own
        # measured away from torch: a fraction of the baseline's figure, which carries torch;
        # its in-process figure is that of the process it was measured in
        assert art["measured_in"] == "own_process"
        torch_process = record["baseline"]["peak_memory_mb"]
        assert own["mb"] < torch_process / 3, (own["mb"], torch_process)
        assert art["peak_memory_mb"] < torch_process / 3, (art["peak_memory_mb"], torch_process)
        assert own["batch"] == art["throughput_batch"] and own["threads"] == 2
        assert [b["batch"] for b in own["by_batch"]] == sorted({1, art["throughput_batch"]})
    assert arts["onnx-fp32"]["params"] > 0  # read from the file by modelpress's process


def test_the_baseline_held_in_memory_is_skipped_with_the_reason(record: dict) -> None:
    own = record["baseline"]["peak_memory_own_process"]
    assert set(own) == {"skipped"} and "held in memory" in own["skipped"]


def test_reports_show_both_peaks_side_by_side(record: dict, tmp_path: Path) -> None:
    paths = write_reports(record, tmp_path)
    md = paths["report.md"].read_text()
    header = next(ln for ln in md.splitlines() if ln.startswith("| step |"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    at = cells.index("peak MB (measuring)")
    assert cells[at + 1] == "peak MB (own process)"
    tflite = record["artifacts"][1]
    row = next(ln for ln in md.splitlines() if "export-tflite-int8" in ln and ln.startswith("|"))
    values = [c.strip() for c in row.strip("|").split("|")]
    assert values[at + 1] == fmt.mb(tflite["peak_memory_own_process"]["mb"])
    assert "own process: a fresh process that loads only the artifact's runtime" in md
    assert "peak MB (own process)" in paths["report.html"].read_text()
    facts = dict(sections.artifact_facts(tflite, "classification"))
    assert facts["peak memory (own process)"].startswith(
        f"{fmt.mb(tflite['peak_memory_own_process']['mb'])} MB at batch"
    )
    assert "litert imported" in facts["peak memory (own process)"]


def test_a_file_broken_for_its_own_process_is_an_error_and_analysis_finishes(
    trained_checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A TorchScript file (measured in modelpress's process, where torch is) found broken by
    the child measuring its peak memory: the entry carries the one-line reason, a note says so,
    and the artifact's other figures stand."""
    from modelpress.engine.context import build_context
    from modelpress.engine.measure import analyze

    recipe = tiny_recipe(str(trained_checkpoint), analyses={"own_process_memory"})
    ctx, base = build_context(build_recipe(recipe))
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.trace(base.module.eval(), ctx.example_inputs(1)[0]), str(path))
    art = Artifact("script", "torchscript", ctx.input_specs, path=path, parents=["baseline"])
    real = analyze_module.own_process_peak

    def break_the_file_first(*args: object, **kwargs: object) -> dict:
        path.write_bytes(b"not a torchscript file")  # after modelpress's process is done with it
        return real(*args, **kwargs)

    monkeypatch.setattr(analyze_module, "own_process_peak", break_the_file_first)
    entry, _ = analyze(art, ctx)

    error = entry["peak_memory_own_process"]["error"]
    assert "\n" not in error and error, error
    assert entry["status"] == "ok" and entry["peak_memory_mb"] > 0
    assert entry["measured_in"] == "in_process"
    assert any(n.startswith("peak memory in its own process not measured") for n in entry["notes"])


def test_a_missing_file_and_a_hang_are_reasons(run: tuple[dict, Path], tmp_path: Path) -> None:
    gone = Artifact("onnx-fp32", "onnx", _spec(), path=tmp_path / "gone.onnx")
    assert (
        "file not found" in own_process_peak(gone, _batch, batches=[1], batch=1, threads=1)["error"]
    )
    slow = own_process_peak(
        Artifact("onnx-fp32", "onnx", _spec(), path=run[1] / "artifacts/model-fp32.onnx"),
        _batch,
        batches=[1],
        batch=1,
        threads=1,
        timeout=0.05,
    )
    assert slow == {"error": "its own process did not finish in 0.05 s (killed)"}


@pytest.mark.parametrize("kind", ["torchscript", "pt2"])
def test_torch_files_are_measured_in_a_process_with_torch(kind: str, tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    if kind == "torchscript":
        path, fmt = tmp_path / "m.pt", "torchscript"
        torch.jit.save(torch.jit.trace(model.eval(), torch.zeros(1, 8)), str(path))
    else:
        path, fmt = tmp_path / "m.pt2", "torch"
        torch.export.save(torch.export.export(model.eval(), (torch.zeros(2, 8),)), str(path))
    art = Artifact("m", fmt, _spec(), path=path)  # type: ignore[arg-type]

    own = own_process_peak(art, _batch, batches=[2], batch=2, threads=1)

    assert own.get("torch_loaded") is True and own["runtime"] == fmt, own
    assert own["mb"] >= own["loaded_mb"] > own["idle_mb"] > 0


def test_a_checkpoint_rebuilt_from_code_is_skipped(tmp_path: Path) -> None:
    art = Artifact("student", "torch", _spec(), path=tmp_path / "model.pt")
    own = own_process_peak(art, _batch, batches=[1], batch=1, threads=1)
    assert "rebuilt from the model's Python code" in own["skipped"]
