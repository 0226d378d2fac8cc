"""Never a silent regression: every quantized artifact is timed in one loop with its runtime's
FP32 artifact; one slower than it is flagged ``slower_than_fp32`` in the record, on the console
and in the report, and is never recommended over that sibling."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from helpers.recipes import run_steps
from modelpress.cli import common
from modelpress.engine.measure import races
from modelpress.engine.measure.benchmark import head_to_head
from modelpress.evaluate import targets, versus_fp32
from modelpress.report import html, markdown
from modelpress.runtimes.base import Runtime

ONNX = {"type": "export", "format": "onnx"}
INT8 = {"type": "export", "format": "onnx", "precision": "int8", "calibration_samples": 64}
DYNAMIC = {"type": "export", "format": "onnx", "precision": "int8-dynamic"}
SAMPLE = Path(__file__).parents[1] / "report" / "sample_record.json"


def _entry(
    name: str, fmt: str, precision: str, parent: str | None, median: float = 1.0, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "format": fmt,
        "precision": precision,
        "parent": parent,
        "path": f"{name}.bin",
        "status": "ok",
        "latency_ms": {"median": median, "p90": median, "batch": 1},
        "size_bytes": 1000,
        "speedup": 1.0 / median,
        "metric_delta_pt": 0.0,
        "primary_metric": "top1",
        "metrics": {"top1": 0.9},
        "fixed_batch": None,
    } | extra


def _timed(sibling: str, ratio: float) -> dict[str, Any]:
    """A pair's ``vs_fp32`` as ``time_pairs`` writes it, its sibling at 0.2 ms."""
    return {
        "sibling": sibling,
        "ratio": ratio,
        "median_ms": 0.2 * ratio,
        "p90_ms": 0.2 * ratio,
        "sibling_median_ms": 0.2,
        "sibling_p90_ms": 0.2,
        "spread": 1.0,
        "sibling_spread": 1.0,
        "unreliable": [],
        "batch": 1,
        "repeats": 50,
        "threads": 2,
    }


# ---------------------------------------------------------------------- which FP32 is the sibling
def test_each_quantized_artifact_is_paired_with_the_fp32_of_its_runtime_and_model() -> None:
    entries = [
        _entry("baseline", "torch", "fp32", None),
        _entry("onnx-fp32", "onnx", "fp32", "baseline"),
        _entry("onnx-int8", "onnx", "int8", "onnx-fp32"),
        _entry("onnx-int8-dynamic", "onnx", "int8-dynamic", "onnx-fp32"),
        _entry("tflite-fp32", "tflite", "fp32", "baseline"),
        _entry("tflite-int8", "tflite", "int8", "baseline"),
        _entry("openvino-int8", "openvino", "int8", "onnx-fp32"),  # before its fp32, another path
        _entry("openvino-fp32", "openvino", "fp32", "baseline"),
        _entry("torch-int8", "torch", "int8", "baseline"),  # the quantize step's .pt2
        _entry("onnx-int8-qat", "onnx", "int8", "torch-int8"),  # exported from that graph
        _entry("student", "torch", "fp32", "baseline"),  # distilled: other weights
        _entry("student-int8", "onnx", "int8", "student"),
        _entry("student-fp16", "onnx", "fp16", "student"),  # not a quantized precision
    ]

    found = dict(versus_fp32.pairs(entries))

    assert found == {
        "onnx-int8": "onnx-fp32",
        "onnx-int8-dynamic": "onnx-fp32",
        "tflite-int8": "tflite-fp32",
        "openvino-int8": "openvino-fp32",
        "torch-int8": "baseline",
        "onnx-int8-qat": "onnx-fp32",
        "student-int8": None,  # onnx-fp32 holds the baseline's weights, not the student's
    }


def test_a_run_from_an_onnx_file_pairs_its_conversions() -> None:
    entries = [
        _entry("baseline", "onnx", "fp32", None),
        _entry("openvino-fp32", "openvino", "fp32", "baseline"),
        _entry("onnx-int8", "onnx", "int8", "baseline"),
        _entry("openvino-int8", "openvino", "int8", "baseline"),
    ]
    assert dict(versus_fp32.pairs(entries)) == {
        "onnx-int8": "baseline",
        "openvino-int8": "openvino-fp32",
    }


# ---------------------------------------------------------------------- timing the pairs
class _Sleeper(Runtime):
    """A runtime whose call takes ``ms`` milliseconds."""

    name = "fake"

    def __init__(self, name: str, ms: float, closed: list[str]) -> None:
        self.name_, self.ms, self.closed = name, ms, closed
        self.threads, self.fixed_batch = 1, None

    def run_all(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        time.sleep(self.ms / 1000)
        return [np.zeros((1, 2), np.float32)]

    def close(self) -> None:
        self.closed.append(self.name_)


def test_every_pair_is_timed_in_one_loop_and_the_slower_one_is_flagged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entries = [
        _entry("baseline", "torch", "fp32", None),
        _entry("onnx-fp32", "onnx", "fp32", "baseline"),
        _entry("onnx-int8", "onnx", "int8", "onnx-fp32"),
        _entry("onnx-int8-dynamic", "onnx", "int8-dynamic", "onnx-fp32"),
        _entry("tflite-int8", "tflite", "int8", "baseline"),  # no tflite fp32 in this run
    ]
    speed = {"onnx-fp32": 2.0, "onnx-int8": 6.0, "onnx-int8-dynamic": 1.0}
    closed: list[str] = []
    loops: list[list[str]] = []
    monkeypatch.setattr(
        races, "runtime_for", lambda art, threads: _Sleeper(art, speed[art], closed)
    )

    def counted(runtimes: dict[str, Runtime], *args: Any, **kwargs: Any) -> dict[str, Any]:
        loops.append(list(runtimes))
        return head_to_head(runtimes, *args, **kwargs)

    monkeypatch.setattr(races, "head_to_head", counted)
    live: dict[str, Any] = {n: n for n in speed}  # the fake runtime_for takes the name

    results = races.time_pairs(
        entries,
        live,
        1,
        lambda b: [np.zeros((b, 4), np.float32)],
        batch=1,
        warmup=1,
        repeats=7,
    )
    flagged = versus_fp32.annotate(entries, results)

    assert loops == [["onnx-int8", "onnx-fp32", "onnx-int8-dynamic"]]  # one loop, fp32 once
    assert closed == ["onnx-int8-dynamic", "onnx-fp32", "onnx-int8"]  # last in, first out
    int8, dynamic, tflite = entries[2], entries[3], entries[4]
    assert [e["name"] for e in flagged] == ["onnx-int8"]
    assert int8["slower_than_fp32"] is int8["vs_fp32"]
    vs = int8["vs_fp32"]
    assert vs["sibling"] == "onnx-fp32" and vs["repeats"] == 7 and vs["batch"] == 1
    assert vs["ratio"] == pytest.approx(vs["median_ms"] / vs["sibling_median_ms"])
    assert vs["ratio"] > 2.0  # 6 ms against 2 ms
    assert vs["spread"] >= 1.0 and isinstance(vs["unreliable"], list)
    assert dynamic["slower_than_fp32"] is None  # faster: the ratio is still recorded
    assert dynamic["vs_fp32"]["sibling"] == "onnx-fp32" and dynamic["vs_fp32"]["ratio"] < 1.0
    assert tflite["slower_than_fp32"] is None and tflite["vs_fp32"]["ratio"] is None
    assert "no tflite fp32 artifact" in tflite["vs_fp32"]["not_compared"]
    assert "baseline" not in results and "onnx-fp32" not in results
    assert "onnx-int8 is slower than its FP32 sibling onnx-fp32" in versus_fp32.describe(int8)


# ---------------------------------------------------------------------- the recommendation
def _flagged_run(ratio: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The baseline, an onnx-fp32 at 0.2 ms and an onnx-int8 that its own benchmark found the
    fastest (0.1 ms), timed in turn with onnx-fp32 at ``ratio`` its latency."""
    base = _entry("baseline", "torch", "fp32", None, 1.0, size_bytes=4000)
    fp32 = _entry("onnx-fp32", "onnx", "fp32", "baseline", 0.2, size_bytes=4000)
    int8 = _entry("onnx-int8", "onnx", "int8", "onnx-fp32", 0.1)
    versus_fp32.annotate([base, fp32, int8], {"onnx-int8": _timed("onnx-fp32", ratio)})
    return base, [fp32, int8]


def test_an_int8_slower_than_its_fp32_is_not_recommended_over_it() -> None:
    base, arts = _flagged_run(1.3)

    rec, _ = targets.recommend(base, arts, {})
    ship = targets.decisions(base, arts, {})
    race = targets.finalists(base, arts, {"min_speedup": 100.0})

    assert rec["name"] == "onnx-fp32"
    assert "set aside" in rec["why"] and "onnx-int8 (1.30× the latency of onnx-fp32)" in rec["why"]
    assert ship["fastest"]["artifact"] == "onnx-fp32"
    assert "onnx-int8" in ship["fastest"]["why"]
    assert [e["name"] for e in race] == ["onnx-fp32"]  # it does not even race


def test_an_int8_faster_than_its_fp32_is_recommended() -> None:
    base, arts = _flagged_run(0.6)

    rec, _ = targets.recommend(base, arts, {})

    assert rec["name"] == "onnx-int8"
    assert "set aside" not in rec["why"] and "slower" not in rec["why"]


def test_a_flagged_int8_whose_sibling_is_out_may_win_but_says_so() -> None:
    base, arts = _flagged_run(1.3)
    arts[0]["metric_delta_pt"] = -5.0  # the fp32 sibling is no candidate (it lost 5 pt)

    rec, _ = targets.recommend(base, arts, {})

    assert rec["name"] == "onnx-int8"
    assert "⚠ slower than its FP32 sibling onnx-fp32 (1.30× its latency" in rec["why"]


# ---------------------------------------------------------------------- a real run
def test_a_run_records_each_int8_against_its_fp32_and_a_resumed_run_too(
    trained_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loops: list[list[str]] = []
    slow_down: dict[str, float] = {}

    def timed(runtimes: dict[str, Runtime], *args: Any, **kwargs: Any) -> dict[str, Any]:
        loops.append(list(runtimes))
        race = head_to_head(runtimes, *args, **kwargs)
        for name, factor in slow_down.items():  # an INT8 kernel slower than FP32's
            race["results"][name]["median"] *= factor
            race["results"][name]["p90"] *= factor
        return race

    monkeypatch.setattr(races, "head_to_head", timed)
    out = tmp_path / "run"

    record = run_steps(trained_checkpoint, out, ONNX, INT8, DYNAMIC, analyses={"races"})

    # the sibling race; a finalists' head-to-head of two may follow on a loaded machine
    assert loops[0] == ["onnx-int8", "onnx-fp32", "onnx-int8-dynamic"]
    assert len(loops) <= 2 and all(len(loop) == 2 for loop in loops[1:])
    first = len(loops)
    on_disk = json.loads((out / "record.json").read_text())
    for rec in (record, on_disk):
        by_name = {e["name"]: e for e in rec["artifacts"]}
        assert "vs_fp32" not in by_name["onnx-fp32"]
        for name in ("onnx-int8", "onnx-int8-dynamic"):
            vs = by_name[name]["vs_fp32"]
            assert vs["sibling"] == "onnx-fp32" and vs["repeats"] == 3
            assert vs["ratio"] == pytest.approx(vs["median_ms"] / vs["sibling_median_ms"])
            assert vs["median_ms"] > 0 and vs["sibling_median_ms"] > 0
            assert {"spread", "sibling_spread", "unreliable"} <= set(vs)
            slower = by_name[name]["slower_than_fp32"]
            assert slower == (vs if vs["ratio"] > 1.0 else None)
    assert "## Quantized vs FP32" in (out / "report.md").read_text()

    # resumed: every step's artifact restored from its files, then timed again, INT8 far slower
    slow_down["onnx-int8"] = 50.0
    resumed = run_steps(
        trained_checkpoint, out, ONNX, INT8, DYNAMIC, resume=True, analyses={"races"}
    )

    assert [s["seconds"] for s in resumed["steps"]] == [s["seconds"] for s in record["steps"]]
    assert set(loops[first]) == {"onnx-int8", "onnx-fp32", "onnx-int8-dynamic"}
    # a finalists' head-to-head may follow when the two left are close on a loaded machine;
    # the INT8 slower than its FP32 is never in it
    assert all("onnx-int8" not in loop for loop in loops[first + 1 :])
    assert len(loops) <= first + 2
    int8 = {e["name"]: e for e in resumed["artifacts"]}["onnx-int8"]
    assert int8["slower_than_fp32"]["sibling"] == "onnx-fp32"
    assert int8["slower_than_fp32"]["ratio"] > 10
    assert resumed["recommendation"]["name"] != "onnx-int8"
    assert resumed["decisions"]["fastest"]["artifact"] != "onnx-int8"
    assert "onnx-int8" not in ((resumed.get("head_to_head") or {}).get("results") or {})
    report = (out / "report.md").read_text()
    assert "| onnx-int8 | onnx-fp32 |" in report and "slower than FP32" in report


def test_a_quantized_torch_graph_is_timed_against_the_model_it_came_from(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    record = run_steps(
        trained_checkpoint, tmp_path / "run", {"type": "quantize"}, analyses={"races"}
    )

    (art,) = record["artifacts"]
    assert (art["name"], art["format"], art["precision"]) == ("torch-int8", "torch", "int8")
    vs = art["vs_fp32"]
    assert vs["sibling"] == "baseline" and vs["median_ms"] > 0 and vs["sibling_median_ms"] > 0
    assert art["slower_than_fp32"] == (vs if vs["ratio"] > 1.0 else None)


# ---------------------------------------------------------------------- report and console
def _record() -> dict[str, Any]:
    """The sample record with an onnx-int8 slower than onnx-fp32, an onnx-int8-dynamic faster
    than it and a tflite-int8 with no FP32 sibling."""
    record = json.loads(SAMPLE.read_text())
    template = record["steps"][1]
    for index, (name, fmt, precision, parent, vs) in enumerate(
        [
            ("onnx-int8", "onnx", "int8", "onnx-fp32", _timed("onnx-fp32", 1.37)),
            ("onnx-int8-dynamic", "onnx", "int8-dynamic", "onnx-fp32", _timed("onnx-fp32", 0.5)),
            (
                "tflite-int8",
                "tflite",
                "int8",
                "baseline",
                {"sibling": None, "ratio": None, "not_compared": "no tflite fp32 artifact"},
            ),
        ],
        start=3,
    ):
        step = copy.deepcopy(template)
        step.update(index=index, name=f"export-{name}")
        art = step["artifact"]
        art.update(name=name, format=fmt, precision=precision, parent=parent, vs_fp32=vs)
        art["slower_than_fp32"] = vs if (vs["ratio"] or 0) > 1 else None
        record["steps"].append(step)
    record["artifacts"] = [s["artifact"] for s in record["steps"]]
    return record


def test_the_report_and_the_console_show_the_flag_and_every_ratio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = _record()
    console = Console(record=True, width=250)
    monkeypatch.setattr(common, "console", console)

    md = markdown.render(record)
    page = html.render(record)
    common.show_run(record, Path("runs/x"))
    printed = console.export_text()

    section = md.split("## Quantized vs FP32\n", 1)[1].split("\n## ", 1)[0]
    assert "50 timed calls each at batch 1, 2 threads" in section
    assert (
        "| onnx-int8 | onnx-fp32 | 0.274 / 0.274 | 0.200 / 0.200 | 1.37× | "
        "⚠ slower than FP32 | ok |"
    ) in section
    assert (
        "| onnx-int8-dynamic | onnx-fp32 | 0.100 / 0.100 | 0.200 / 0.200 | 0.50× | 2.00× faster |"
        in section
    )
    assert "| tflite-int8 | — | — | — | — | not compared: no tflite fp32 artifact | — |" in section
    assert "Quantized vs FP32" in page and "⚠ slower than FP32" in page
    assert "Quantized vs FP32" in printed
    assert "slower than FP32" in printed and "1.37×" in printed and "2.00× faster" in printed


def test_a_run_without_quantized_artifacts_has_no_such_section(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = json.loads(SAMPLE.read_text())
    console = Console(record=True, width=250)
    monkeypatch.setattr(common, "console", console)

    common.show_run(record, Path("runs/x"))

    assert "Quantized vs FP32" not in markdown.render(record)
    assert "Quantized vs FP32" not in console.export_text()
