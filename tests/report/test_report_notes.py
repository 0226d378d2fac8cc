"""What the report and the console tell a user about how far to trust a run: timings from a busy
machine, the finalists' head-to-head, layers an INT8 model kept in FP32, a fixed-batch artifact's
missing rows, no verdict without targets; and the console free of library banners."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from helpers.cli import cli_process
from modelpress import chatter
from modelpress.cli import common
from modelpress.report import html, markdown

SAMPLE = Path(__file__).with_name("sample_record.json")
LOAD = "1-minute load average 3.10 (> 2 threads): other work was running"
FALLBACK = {
    "bound_pt": 1.0,
    "initial_drop_pt": 3.2,
    "kept_fp32": [
        {"node": "/features/conv0/Conv", "op": "Conv", "error_reduction": 0.02},
        {"node": "/head/Gemm", "op": "Gemm", "error_reduction": 0.01},
    ],
    "needed": True,
    "final_drop_pt": 0.4,
    "met": True,
    "layers_ranked": 9,
}


@pytest.fixture
def record() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text())


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _console_output(record: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    """What ``modelpress run`` prints for ``record`` at the end of a run."""
    console = Console(record=True, width=250)
    monkeypatch.setattr(common, "console", console)
    common.show_run(record, Path("runs/x"))
    return console.export_text()


def _int8(record: dict[str, Any]) -> dict[str, Any]:
    """The sample with an INT8 ONNX artifact whose accuracy bound kept two layers FP32."""
    step = copy.deepcopy(record["steps"][1])
    step.update(index=3, name="export-onnx-int8")
    art = step["artifact"]
    art.update(name="onnx-int8", precision="int8", parent="onnx-fp32")
    art["details"] = {"method": "onnxruntime quantize_static (QDQ)", "fallback": FALLBACK}
    record["steps"].append(step)
    return record


# ---------------------------------------------------------------------- INT8 fallback
def test_layers_kept_fp32_are_on_the_console_and_in_the_report(
    record: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _int8(record)

    printed = _console_output(record, monkeypatch)
    md = markdown.render(record)

    assert "INT8 accuracy fallback" in printed
    assert "/features/conv0/Conv" in printed and "/head/Gemm" in printed
    section = _section(md, "INT8 accuracy fallback")
    assert "| onnx-int8 | 1.00 | 3.20 | 0.400 | ✓ |" in section
    assert "2 of 9: /features/conv0/Conv (Conv), /head/Gemm (Gemm)" in section
    assert "INT8 accuracy fallback" in html.render(record)


def test_no_fallback_section_when_no_artifact_ran_one(
    record: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "## INT8 accuracy fallback" not in markdown.render(record)
    assert "fallback" not in _console_output(record, monkeypatch)


# ---------------------------------------------------------------------- targets, threads
def test_no_targets_no_verdict(record: dict[str, Any]) -> None:
    record["targets"] = {}

    rec = _section(markdown.render(record), "Recommendation")

    assert "**onnx-fp32 (artifacts/model-fp32.onnx) — no targets set**" in rec
    assert "meets every target" not in rec and "✓" not in rec


def test_one_thread_is_singular(record: dict[str, Any]) -> None:
    record["environment"]["threads"] = 1
    summary = markdown.render(record).split("\n\n")[1]
    assert "measured with 1 thread on" in summary


# ---------------------------------------------------------------------- fixed batch
def test_a_fixed_batch_litert_artifact_says_why_batch_32_is_missing(
    record: dict[str, Any],
) -> None:
    art = record["steps"][1]["artifact"]
    art.update(name="tflite-int8", format="tflite", runtime="litert", fixed_batch=1)
    art["latency_by_batch"] = art["latency_by_batch"][:1]
    art["batches_not_measured"] = [32]

    notes = _section(markdown.render(record), "Notes")

    assert "- **tflite-int8**: runs at batch 1 only (" in notes
    assert "no latency or throughput at batch 32" in notes
    assert "LiteRT" in notes


# ---------------------------------------------------------------------- busy machine
def test_unreliable_timings_are_flagged_in_the_report_and_on_the_console(
    record: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    record["baseline"]["latency_ms"]["unreliable"] = [LOAD]
    record["baseline"]["latency_by_batch"][0]["unreliable"] = [LOAD]

    md = markdown.render(record)
    printed = _console_output(record, monkeypatch)

    progression = _section(md, "Progression")
    assert "| 0.970 / 1.03 ⚠ |" in progression
    assert "Timings unreliable" in progression and f"- baseline: {LOAD}" in progression
    assert "timings unreliable" in printed and LOAD in printed


def test_reliable_timings_carry_no_warning(
    record: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "unreliable" not in markdown.render(record).lower()
    assert "unreliable" not in _console_output(record, monkeypatch).lower()


# ---------------------------------------------------------------------- head-to-head
def test_the_head_to_head_is_in_the_report_and_on_the_console(
    record: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    record["head_to_head"] = {
        "batch": 1,
        "repeats": 50,
        "threads": 2,
        "window": 1.5,
        "order": "round-robin, rotating start",
        "results": {
            "onnx-fp32": {"median": 0.0371, "p90": 0.0402, "unreliable": []},
            "torchscript-fp32": {"median": 0.0502, "p90": 0.0611, "unreliable": []},
        },
        "fastest": "onnx-fp32",
        "unreliable": [],
    }

    md = markdown.render(record)
    printed = _console_output(record, monkeypatch)

    race = md.split("### Head-to-head\n", 1)[1].split("\n### ", 1)[0]
    assert "50 timed calls each at batch 1, 2 threads" in race
    assert "| onnx-fp32 ★ | 0.0371 | 0.0402 | 1.00× | ok |" in race
    assert "| torchscript-fp32 | 0.0502 | 0.0611 | 1.35× | ok |" in race
    assert "Head-to-head" in printed and "1.35×" in printed


# ---------------------------------------------------------------------- library banners
BANNERS = ("absl", "XNNPACK", "oneDNN")


def test_a_tflite_export_prints_no_library_banners_unless_verbose(tmp_path: Path) -> None:
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    cli = cli_process  # native banners go to fd 2: a real process shows what a user sees
    args = ["export", "zoo:mlp", "--data", "builtin:digits", "--format", "tflite"]
    args += ["--out", str(tmp_path / "run")]

    quiet = cli(*args)
    loud = cli("--verbose", *args, "--force")

    assert quiet.returncode == 0, quiet.stderr
    shown = quiet.stdout + quiet.stderr
    assert not [b for b in BANNERS if b in shown], shown
    assert "tflite-fp32" in quiet.stdout  # the run itself is still reported
    assert loud.returncode == 0, loud.stderr
    assert "XNNPACK" in loud.stderr  # --verbose lets the libraries speak


def test_sklearn_warnings_are_hidden_unless_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.metrics import precision_score

    monkeypatch.setitem(chatter._state, "verbose", False)
    monkeypatch.setenv(chatter.VERBOSE_ENV, "0")  # set_verbose writes it: restored after
    for verbose, expected in ((False, 0), (True, 1)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            chatter.set_verbose(verbose)
            precision_score([0, 1], [0, 0])  # no positive prediction: ill-defined precision
        assert len(caught) == expected, [str(w.message) for w in caught]


def test_banner_lines_are_dropped_and_everything_else_kept() -> None:
    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796228076.175418    4142 port.cc:153] oneDNN custom operations are on.\n"
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
        "E0000 00:00:1796228076.175418    4142 model.cc:12] real trouble\n"
        "Traceback (most recent call last):\n"
    )
    assert chatter.drop_banners(text) == (
        "E0000 00:00:1796228076.175418    4142 model.cc:12] real trouble\n"
        "Traceback (most recent call last):\n"
    )
