"""What the terminal shows keeps bracketed text: the tables' captions and titles, the progress
lines and the end-of-run lines put data (reasons, names, errors) into rich as text, never as
markup, whatever console prints them (these tests use rich's default, markup on)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from modelpress.cli import common
from modelpress.cli.observer import RichObserver
from modelpress.report import terminal

SAMPLE = Path(__file__).with_name("sample_record.json")
BUSY = "load [b]high[/b] on cpu[i]"  # reads as bold / italic markup if it ever is markup


@pytest.fixture
def record() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text())


def _printed(*renderables: Any) -> str:
    console = Console(file=io.StringIO(), width=250, color_system=None)
    for renderable in renderables:
        console.print(renderable)
    return console.file.getvalue()


def test_table_captions_and_titles_keep_brackets(record: dict[str, Any]) -> None:
    record["baseline"]["latency_ms"]["unreliable"] = [BUSY]
    record["head_to_head"] = {
        "order": "[onnx-fp32, torchscript-fp32]",
        "repeats": 20,
        "batch": 1,
        "threads": 2,
        "results": {"onnx-fp32": {"median": 0.01, "p90": 0.02}},
        "fastest": "onnx-fp32",
    }
    entry = {**record["baseline"], "name": "net[b]"}

    printed = _printed(
        terminal.progression_table(record),
        terminal.head_to_head_table(record),
        terminal.artifact_table(entry, "classification"),
    )

    assert f"baseline: {BUSY}" in printed
    assert "in turn ([onnx-fp32, torchscript-fp32])" in printed
    assert "net[b]" in printed


def test_progress_and_event_lines_keep_brackets() -> None:
    console = Console(file=io.StringIO(), width=250, force_terminal=True, color_system=None)
    observer = RichObserver(console)
    with observer.progress("training net[b]", 2) as advance:
        advance(1, note="[i]x")
    observer.event("step", "export-tflite: running")
    observer.event("warning", "kept FP32: features[0][b]")
    observer.event("step-done", "", step="export-tflite", status="failed", seconds=0.1,
                   error="needs the [tflite] extra: pip install 'modelpress[tflite]'")  # fmt: skip

    printed = console.file.getvalue()
    assert "training net[b]" in printed and "note [i]x" in printed
    assert "! kept FP32: features[0][b]" in printed
    assert "— needs the [tflite] extra: pip install 'modelpress[tflite]'" in printed


def test_the_recommendation_line_keeps_brackets(
    record: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    record["recommendation"]["why"] = "smallest of [b]two[/b] candidates"
    console = Console(file=io.StringIO(), width=250, color_system=None)
    monkeypatch.setattr(common, "console", console)

    common.show_run(record, Path("runs/a[b]"))

    printed = console.file.getvalue()
    assert "— smallest of [b]two[/b] candidates" in printed
    assert "run directory: runs/a[b]  (report.md" in printed
