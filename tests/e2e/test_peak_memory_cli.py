"""Peak memory in the artifact's own process, as the CLI shows it and the run records it."""

import json
from pathlib import Path

import yaml

from helpers.cli import run_cli
from helpers.recipes import tiny_recipe


def test_run_and_bench_show_the_own_process_peak(trained_checkpoint: Path, tmp_path: Path) -> None:
    steps = [{"type": "export", "format": "onnx"}]
    recipe = tiny_recipe(str(trained_checkpoint), analyses={"own_process_memory"}, steps=steps)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))

    ran = run_cli("run", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"))

    assert ran.returncode == 0, ran.stderr
    assert "own proc." in ran.stdout  # the progression's column header (second line)
    record = json.loads((tmp_path / "run/record.json").read_text())
    onnx = record["artifacts"][0]
    own = onnx["peak_memory_own_process"]
    assert own["runtime"] == "onnxruntime" and own["torch_loaded"] is False
    # measured in that process, away from torch: a fraction of the baseline's peak
    assert onnx["measured_in"] == "own_process"
    assert 0 < own["mb"] < record["baseline"]["peak_memory_mb"] / 3
    assert (
        "| peak MB (measuring) | peak MB (own process) |"
        in (tmp_path / "run/report.md").read_text()
    )

    bench = run_cli(
        "bench",
        str(tmp_path / "run/artifacts/model-fp32.onnx"),
        "--data",
        "builtin:digits",
        "--repeats",
        "3",
        "--json",
        str(tmp_path / "bench.json"),
    )

    assert bench.returncode == 0, bench.stderr
    line = next(ln for ln in bench.stdout.splitlines() if "peak memory (own process)" in ln)
    assert "MB at batch 32" in line and "onnxruntime imported" in line
    entry = json.loads((tmp_path / "bench.json").read_text())
    assert entry["measured_in"] == "own_process"  # a deployed file, in its own process
    assert 0 < entry["peak_memory_own_process"]["mb"] <= 2 * entry["peak_memory_mb"]
