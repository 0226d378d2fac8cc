import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe, load_recipe
from modelpress.engine import pipeline
from modelpress.errors import ResumeError

STEPS = [{"type": "torchscript"}, {"type": "export", "format": "onnx"}]


def _recipe(checkpoint: Path, **extra: object):
    return build_recipe(
        tiny_recipe(str(checkpoint), steps=STEPS, targets={"max_accuracy_drop": 0.5}, **extra)
    )


def test_run_writes_the_contract(trained_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    record = pipeline.run(_recipe(trained_checkpoint), out=out)
    on_disk = json.loads((out / "record.json").read_text())
    assert on_disk["schema"] == 2 and on_disk["task"] == "classification"
    base = on_disk["baseline"]
    assert base["format"] == "torch" and base["metrics"]["top1"] >= 0.8
    for key in ("size_bytes", "params", "macs", "latency_ms", "throughput_per_s", "peak_memory_mb"):
        assert key in base
    assert [s["status"] for s in on_disk["steps"]] == ["ok", "ok"]
    formats = {a["format"]: a for a in on_disk["artifacts"]}
    assert set(formats) == {"torchscript", "onnx"}
    onnx_entry = formats["onnx"]
    assert (
        onnx_entry["runtime"] == "onnxruntime" and onnx_entry["path"] == "artifacts/model-fp32.onnx"
    )
    assert onnx_entry["verification"]["max_abs_diff"] <= 1e-4
    assert onnx_entry["verification"]["agreement"] == 1.0
    assert onnx_entry["metrics"]["top1"] == pytest.approx(base["metrics"]["top1"], abs=0.003)
    assert (out / "artifacts/model-fp32.ptl").is_file()
    assert on_disk["recommendation"]["name"] in {"baseline", "torchscript-fp32", "onnx-fp32"}
    assert on_disk["targets"]["max_accuracy_drop"]["met"] is True
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert (out / "env.json").is_file() and (out / "recipe.yaml").is_file()
    assert record["steps"][1]["artifact"]["name"] == "onnx-fp32"
    replay = load_recipe(out / "recipe.yaml")  # the written recipe is a valid, replayable recipe
    assert [s.type for s in replay.steps] == ["torchscript", "export"]


def test_resume_skips_finished_steps_and_reruns_changed_ones(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    first = pipeline.run(_recipe(trained_checkpoint), out=out)
    mtime = (out / "artifacts/model-fp32.pt").stat().st_mtime_ns
    again = pipeline.run(_recipe(trained_checkpoint), out=out, resume=True)
    assert (out / "artifacts/model-fp32.pt").stat().st_mtime_ns == mtime
    assert again["steps"][0]["seconds"] == first["steps"][0]["seconds"]  # entry reused as is
    changed = build_recipe(
        tiny_recipe(str(trained_checkpoint), steps=[STEPS[0], {**STEPS[1], "opset": 17}])
    )
    third = pipeline.run(changed, out=out, resume=True)
    assert (out / "artifacts/model-fp32.pt").stat().st_mtime_ns == mtime
    assert third["steps"][1]["config"]["opset"] == 17
    assert third["steps"][1]["status"] == "ok"


def test_resume_refuses_a_directory_from_another_recipe(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    pipeline.run(_recipe(trained_checkpoint), out=out)
    other = _recipe(trained_checkpoint, data={"source": "builtin:digits", "seed": 7})
    with pytest.raises(
        ResumeError, match=r"--resume on a run made from a different recipe \(data differ"
    ):
        pipeline.run(other, out=out, resume=True)
    with pytest.raises(ResumeError, match="already holds a run; pass --resume"):
        pipeline.run(other, out=out)


def test_a_failing_step_is_recorded_and_the_run_goes_on(
    trained_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelpress.steps.torchscript as ts

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the tracer fell over\nsecond line")

    monkeypatch.setattr(ts.torch.jit, "trace", broken)
    out = tmp_path / "run"
    record = pipeline.run(_recipe(trained_checkpoint), out=out)
    first, second = record["steps"]
    assert first["status"] == "failed" and first["artifact"] is None
    assert first["error"] == "torch.jit.trace failed: RuntimeError: the tracer fell over"
    assert second["status"] == "ok"
    assert "the tracer fell over" in (out / "report.md").read_text()


def test_record_is_valid_after_each_step(trained_checkpoint: Path, tmp_path: Path) -> None:
    """The record on disk is complete JSON at every step boundary (atomic writes)."""
    seen: list[int] = []

    class Watch(pipeline.Observer):
        def event(self, kind: str, message: str, **fields: object) -> None:
            if kind == "step" and (tmp_path / "run/record.json").exists():
                seen.append(len(json.loads((tmp_path / "run/record.json").read_text())["steps"]))

    record = pipeline.run(_recipe(trained_checkpoint), out=tmp_path / "run", observer=Watch())
    assert seen == [0, 1]
    base_key = record["nodes"][0]["key"]
    assert np.load(tmp_path / f"run/nodes/{base_key}/outputs.npz")["arr_0"].shape[1] == 10
    assert yaml.safe_load((tmp_path / "run/recipe.yaml").read_text())["out"] == str(
        (tmp_path / "run").resolve()
    )
