"""INT8 coverage: every int8 artifact records how much of it its runtime really runs in int8.

Two small models through the pipeline at 3×16×16 on digits: a MobileNetV3-style block model
(Conv-BN-Hardswish, depthwise, squeeze-excite with Hardsigmoid and Mul, a residual Add) and a
plain Conv-ReLU model whose multiply-accumulates can be counted by hand. Untrained: what runs in
int8 does not depend on the weights' values. TFLite and OpenVINO only where their extra imports.
"""

from __future__ import annotations

import importlib.util
import json
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from helpers.cli import run_cli
from modelpress.core.artifact import Artifact
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.engine.measure.coverage import int8_coverage
from modelpress.report import markdown, sections, terminal
from modelpress.runtimes.base import Runtime

HAS_TFLITE = all(importlib.util.find_spec(m) for m in ("litert_torch", "ai_edge_litert"))
HAS_OPENVINO = all(importlib.util.find_spec(m) for m in ("openvino", "nncf"))
needs_tflite = pytest.mark.skipif(not HAS_TFLITE, reason="the [tflite] extra is not installed")
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="the [openvino] extra is missing")

MODELS = textwrap.dedent(
    """
    from torch import nn


    def cba(cin, cout, k, stride=1, groups=1, act=None):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, *([act] if act is not None else []))


    class SqueezeExcite(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc1, self.relu = nn.Conv2d(c, c // 4, 1), nn.ReLU()
            self.fc2, self.gate = nn.Conv2d(c // 4, c, 1), nn.Hardsigmoid()

        def forward(self, x):
            return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


    class Block(nn.Module):
        def __init__(self, c, expanded):
            super().__init__()
            self.body = nn.Sequential(
                cba(c, expanded, 1, act=nn.Hardswish()),
                cba(expanded, expanded, 3, groups=expanded, act=nn.Hardswish()),
                SqueezeExcite(expanded),
                cba(expanded, c, 1),
            )

        def forward(self, x):
            return x + self.body(x)


    def se_net(num_classes=10):
        return nn.Sequential(
            cba(3, 16, 3, stride=2, act=nn.Hardswish()), Block(16, 32), Block(16, 48),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes),
        )


    def conv_relu(num_classes=10):
        return nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes),
        )
    """
)
# conv_relu at 16×16: each output element of a conv sums C_in·3·3 products.
CONV_MACS = 16 * 16 * 16 * (3 * 9) + 8 * 8 * 32 * (16 * 9)
LINEAR_MACS = 32 * 10
# the stem pinned to int8: these tests count coverage, not the measured stem choice
INT8 = {
    "type": "export",
    "format": "onnx",
    "precision": "int8",
    "activation_type": "uint8",
    "stem": "int8",
}


def _steps(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    steps = [INT8, {"type": "export", "format": "onnx"}, *extra]
    if HAS_TFLITE:
        steps.append({"type": "export", "format": "tflite", "precision": "int8", "stem": "int8"})
    if HAS_OPENVINO:
        steps.append({"type": "export", "format": "openvino", "precision": "int8"})
    return steps


def _run(model_file: Path, factory: str, out: Path, steps: list[dict[str, Any]]) -> dict:
    recipe = build_recipe(
        {
            "model": f"{model_file}:{factory}",
            "data": {"source": "builtin:digits", "max_samples": 300},
            "input_shape": "1,3,16,16",
            "evaluate": {
                **{"warmup": 1, "repeats": 3, "batch_sizes": [1], "threads": 2},
                **{"own_process_memory": False, "races": False},  # coverage alone
            },
            "steps": steps,
        }
    )
    return pipeline.run(recipe, out=out)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "mobile.py"
    path.write_text(MODELS)
    return path


@pytest.fixture(scope="module")
def se_run(model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("se") / "run"
    return _run(model_file, "se_net", out, _steps()), out


@pytest.fixture(scope="module")
def conv_run(model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    kept = {**INT8, "name": "int8-fp32-head", "keep_fp32": ["Gemm", "MatMul"]}
    return _run(model_file, "conv_relu", tmp_path_factory.mktemp("conv") / "run", _steps(kept))


def _artifact(record: dict, name: str) -> dict:
    found = [a for a in record["artifacts"] if a["name"] == name]
    assert found, f"no artifact {name}: {[s.get('error') for s in record['steps']]}"
    return found[0]


def _assert_consistent(cov: dict, macs: int) -> None:
    """Counts add up, and the MACs split between int8 and float are all the model's MACs
    (counted by the baseline on the torch graph)."""
    assert cov["ops_total"] == cov["ops_int8"] + cov["ops_float"] > 0
    assert sum(cov["int8_ops"].values()) == cov["ops_int8"] > 0
    assert sum(cov["float_ops"].values()) == cov["ops_float"]
    assert set(cov["q_dq"]) == {"quantize", "dequantize"}
    assert cov["macs_int8"] + cov["macs_float"] == macs
    assert cov["macs_int8_share"] == pytest.approx(cov["macs_int8"] / macs, abs=1e-4)
    if cov["time_share"] is not None:
        assert sum(cov["time_share"].values()) == pytest.approx(1.0, abs=0.01)


def test_onnx_int8_coverage_counts_what_the_ort_session_runs(se_run: tuple[dict, Path]) -> None:
    import onnx
    import onnxruntime as ort

    record, out = se_run
    int8 = _artifact(record, "onnx-int8")
    cov = int8["int8_coverage"]
    assert cov["runtime"] == "onnxruntime" and "ORT_ENABLE_ALL" in cov["source"]
    _assert_consistent(cov, record["baseline"]["macs"])
    _assert_consistent(cov["model_graph"], record["baseline"]["macs"])
    assert cov["time_share"]["int8"] > 0  # ORT's profiler timed the integer kernels
    file_q_dq = cov["model_graph"]["q_dq"]
    assert file_q_dq["dequantize"] >= file_q_dq["quantize"] > 0  # weights have a DQ each
    # The same graph saved by a session of our own: every op it holds is counted once.
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(out / "ort-optimized.onnx")
    opts.log_severity_level = 3
    ort.InferenceSession(str(out / int8["path"]), opts, providers=["CPUExecutionProvider"])
    saved = Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)
    counted = Counter(cov["int8_ops"]) + Counter(cov["float_ops"]) + Counter(cov["other_ops"])
    counted += Counter({"QuantizeLinear": cov["q_dq"]["quantize"]})
    counted += Counter({"DequantizeLinear": cov["q_dq"]["dequantize"]})
    assert counted == saved
    assert "int8_coverage" not in _artifact(record, "onnx-fp32")  # float: nothing to cover
    assert "int8_coverage" not in record["baseline"]


def test_conv_relu_model_runs_its_conv_macs_in_int8(conv_run: dict) -> None:
    assert conv_run["baseline"]["macs"] == CONV_MACS + LINEAR_MACS
    full = _artifact(conv_run, "onnx-int8")["int8_coverage"]
    _assert_consistent(full, CONV_MACS + LINEAR_MACS)
    assert full["macs_int8"] == CONV_MACS + LINEAR_MACS  # the pooling may still run in float
    # The classifier kept FP32 by the recipe: its MACs, and only those, run in float.
    kept = _artifact(conv_run, "int8-fp32-head")["int8_coverage"]
    assert (kept["macs_int8"], kept["macs_float"]) == (CONV_MACS, LINEAR_MACS)
    assert any("Gemm" in t or "MatMul" in t for t in kept["float_ops"]), kept["float_ops"]
    assert "QLinearConv" in kept["int8_ops"]


@needs_tflite
def test_tflite_int8_coverage_reads_types_and_delegation(
    se_run: tuple[dict, Path], conv_run: dict
) -> None:
    record, _ = se_run
    cov = _artifact(record, "tflite-int8")["int8_coverage"]
    assert cov["runtime"] == "litert" and cov["time_share"] is None  # no per-op profiler
    _assert_consistent(cov, record["baseline"]["macs"])
    assert "CONV_2D" in cov["int8_ops"] and "DEPTHWISE_CONV_2D" in cov["int8_ops"]
    delegate = cov["delegate"]
    ops = cov["ops_total"] + sum(cov["q_dq"].values()) + sum(cov["other_ops"].values())
    assert delegate["partitions"] >= 1
    assert delegate["ops_delegated"] + sum(delegate["not_delegated"].values()) == ops
    conv = _artifact(conv_run, "tflite-int8")["int8_coverage"]
    _assert_consistent(conv, CONV_MACS + LINEAR_MACS)
    assert conv["macs_int8_share"] >= 0.99


@needs_openvino
def test_openvino_int8_coverage_reads_the_compiled_graph(
    se_run: tuple[dict, Path], conv_run: dict
) -> None:
    record, _ = se_run
    cov = _artifact(record, "openvino-int8")["int8_coverage"]
    assert cov["runtime"] == "openvino"
    _assert_consistent(cov, record["baseline"]["macs"])
    _assert_consistent(cov["model_graph"], record["baseline"]["macs"])
    assert cov["model_graph"]["fake_quantize"] > 0
    assert any(t.startswith("Convolution") for t in cov["int8_ops"])
    assert cov["time_share"]["int8"] > 0  # the plugin's performance counters
    conv = _artifact(conv_run, "openvino-int8")["int8_coverage"]
    _assert_consistent(conv, CONV_MACS + LINEAR_MACS)
    assert conv["macs_int8_share"] >= 0.99


def test_report_and_console_show_the_coverage(
    se_run: tuple[dict, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelpress.cli import common

    record, out = se_run
    cov = _artifact(record, "onnx-int8")["int8_coverage"]
    int8_names = [a["name"] for a in record["artifacts"] if a["precision"] == "int8"]
    md = (out / "report.md").read_text()
    section = md.split("## INT8 coverage\n", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ")][2:]
    assert [r.split(" | ")[0].removeprefix("| ") for r in rows] == int8_names
    onnx_row = rows[int8_names.index("onnx-int8")]
    assert f"| {cov['ops_int8']} / {cov['ops_total']} |" in onnx_row
    assert f"(file: {cov['model_graph']['q_dq']['quantize']} /" in onnx_row
    assert "<h2>INT8 coverage</h2>" in (out / "report.html").read_text()
    console = Console(record=True, width=200)
    monkeypatch.setattr(common, "console", console)
    common.show_run(record, out)
    printed = console.export_text()
    assert "INT8 coverage" in printed
    assert f"{cov['ops_int8']} / {cov['ops_total']}" in printed


def test_bench_of_an_int8_file_prints_its_coverage(se_run: tuple[dict, Path]) -> None:
    record, out = se_run
    path = out / _artifact(record, "onnx-int8")["path"]
    js = out / "bench.json"
    args = ("--data", "builtin:digits", "--repeats", "3", "--warmup", "0", "--batch-sizes", "1")
    result = run_cli("bench", str(path), *args, "--json", str(js))
    assert result.returncode == 0, result.stderr
    cov = json.loads(js.read_text())["int8_coverage"]
    line = [ln for ln in result.stdout.splitlines() if "int8 coverage" in ln]
    assert line and f"{cov['ops_int8']}/{cov['ops_total']} ops int8" in line[0]


class _Broken(Runtime):
    name = "broken"

    def run_all(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [inputs[0]]

    def int8_graphs(self, inputs: list[np.ndarray]) -> dict:
        raise RuntimeError("no graph here\nsecond line")


def test_a_runtime_that_cannot_say_records_why_and_the_report_shows_it() -> None:
    cov = int8_coverage(_Broken(Artifact("q", "onnx", [], precision="int8"), 1), [])
    assert cov == {"runtime": "broken", "error": "RuntimeError: no graph here"}
    assert int8_coverage(_Broken(Artifact("f", "onnx", [], precision="fp32"), 1), []) is None
    record = {"baseline": {"name": "baseline"}, "steps": [{"artifact": {"name": "q"}}]}
    record["steps"][0]["artifact"]["int8_coverage"] = cov
    md = markdown.render(record)
    assert "| q | broken | — |" in md and "not read: RuntimeError: no graph here" in md
    table = terminal.coverage_table(record)
    assert table is not None and sections.coverage({"baseline": {"name": "b"}}) is None
