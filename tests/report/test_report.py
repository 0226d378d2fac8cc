"""Reports are views of record.json: what a user reads in report.md, report.html, the plots and
the terminal tables, for a real record (tests/report/sample_record.json, from a smoke run of an
untrained zoo:dscnn on builtin:digits) and for variants edited from it."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from modelpress.report import format as fmt
from modelpress.report import html, markdown, terminal, write_reports

SAMPLE = Path(__file__).with_name("sample_record.json")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ERROR = "ModelpressError: export-tflite needs the [litert] extra: pip install 'modelpress[litert]'"
DEGRADED_NOTE = "degraded: top-1 agreement with baseline is 91.2% (below 99%)"


@pytest.fixture
def record() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text())


@pytest.fixture
def troubled(record: dict[str, Any]) -> dict[str, Any]:
    """The sample with a degraded TorchScript artifact and a failed third step (no artifact)."""
    step = record["steps"][0]
    step["status"] = step["artifact"]["status"] = "degraded"
    step["artifact"]["notes"] = [DEGRADED_NOTE]
    step["artifact"]["verification"]["agreement"] = 0.912
    record["steps"].append(
        {"index": 3, "name": "export-tflite", "type": "export", "status": "failed",
         "seconds": 0.01, "error": ERROR, "config": {"format": "tflite", "precision": "int8"},
         "artifact": None}
    )  # fmt: skip
    return record


def _section(md: str, title: str) -> str:
    """The text of one ``## title`` section of report.md."""
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _table_rows(section: str) -> list[str]:
    """Body rows of the first markdown table in a section (header and rule skipped)."""
    return [ln for ln in section.splitlines() if ln.startswith("|")][2:]


def _text(table: Table) -> str:
    console = Console(record=True, width=200)
    console.print(table)
    return console.export_text()


def test_write_reports_writes_markdown_html_and_plots(tmp_path: Path, record: dict) -> None:
    paths = write_reports(record, tmp_path)

    assert set(paths) == {
        "report.md",
        "report.html",
        "plots/overview.png",
        "plots/latency_vs_metric.png",
        "plots/confusion_matrix.png",
    }
    assert all(p.is_file() and p.parent.is_relative_to(tmp_path) for p in paths.values())
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in (tmp_path / "plots").iterdir())
    assert not [p for p in tmp_path.rglob(".*")], "atomic writes left temp files behind"
    md = paths["report.md"].read_text()
    assert md.startswith("# modelpress report: smoke-run — zoo:dscnn\n")
    assert "![overview.png](plots/overview.png)" in md


def test_markdown_summary_targets_recommendation_environment(record: dict) -> None:
    md = markdown.render(record)

    summary = md.split("\n\n")[1]
    assert "classification" in summary and "360 validation" in summary
    assert "2 threads on AMD EPYC" in summary
    assert "| max_size_mb | ≤ 1.00 | 0.0278 | ✓ |" in _section(md, "Targets")
    assert "**onnx-fp32 (artifacts/model-fp32.onnx) — meets every target ✓**" in md
    assert "25.95× the baseline's speed" in _section(md, "Recommendation")
    assert "| 5 | 97.5% | 97.5% | +0.00 pt |" in _section(md, "Per-class accuracy")
    environment = _section(md, "Environment")
    assert "avx512_vnni" in environment and "onnxruntime 1.31.1" in environment


def test_progression_has_a_row_per_step_and_shows_failures(troubled: dict) -> None:
    md = markdown.render(troubled)

    rows = _table_rows(_section(md, "Progression"))
    assert len(rows) == len(troubled["steps"]) + 1
    assert rows[0].startswith(
        "| baseline | torch | fp32 | ok | 0.0281 | 6.44K | 166K | 0.970 / 1.03 |"
    )
    assert "| 2. export-onnx ★ | onnx | fp32 | ok |" in rows[2]
    assert "| 25.95× | 232K @b32 |" in rows[2]
    assert "| degraded |" in rows[1] and "91.2%" in rows[1]
    assert rows[3].startswith("| 3. export-tflite | tflite | int8 | failed | — |")
    assert rows[3].endswith(f"| {ERROR} |")
    notes = _section(md, "Notes")
    assert f"- **torchscript-fp32**: {DEGRADED_NOTE}" in notes
    assert f"- **step 3 export-tflite (failed)** error: {ERROR}" in notes


def test_multiline_error_is_kept_verbatim_in_notes(troubled: dict) -> None:
    troubled["steps"][-1]["error"] = "ValueError: shapes differ\n  expected (1, 10)\n  got (1, 12)"

    md = markdown.render(troubled)

    assert "| ValueError: shapes differ |" in _section(md, "Progression")
    fenced = "  ```\n  ValueError: shapes differ\n    expected (1, 10)\n    got (1, 12)\n  ```"
    assert fenced in _section(md, "Notes")


def test_html_is_self_contained_escaped_and_coloured(tmp_path: Path, troubled: dict) -> None:
    troubled["steps"][1]["artifact"]["notes"] = ["<script>alert(1)</script> & more"]

    page = write_reports(troubled, tmp_path)["report.html"].read_text()

    assert page.count('<img src="data:image/png;base64,iVBOR') == 3
    assert '<a href="plots/overview.png">' in page
    assert '<td class="failed">failed</td>' in page
    assert '<td class="degraded">degraded</td>' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "<script>" not in page
    for section in ("Progression", "Targets", "Recommendation", "Per-class accuracy", "Notes",
                    "Environment"):  # fmt: skip
        assert f"<h2>{section}</h2>" in page


def test_missing_numbers_render_as_dash(tmp_path: Path, record: dict) -> None:
    onnx = record["steps"][1]["artifact"]
    for key in ("size_bytes", "params", "macs", "speedup", "throughput_per_s", "peak_memory_mb",
                "metric_delta_pt", "verification", "latency_by_batch"):  # fmt: skip
        onnx[key] = None
    onnx["latency_ms"] = {"median": None, "p90": None, "batch": 1}
    onnx["metrics"] = {"top1": None, "confusion_matrix": None}

    paths = write_reports(record, tmp_path)

    row = _table_rows(_section(paths["report.md"].read_text(), "Progression"))[2]
    assert row == "| 2. export-onnx ★ | onnx | fp32 | ok |" + " — |" * 12 + "  |"
    assert "plots/confusion_matrix.png" not in paths  # the recommended one has no matrix
    assert paths["plots/overview.png"].read_bytes().startswith(PNG_MAGIC)


def test_record_of_a_run_that_just_started_renders(tmp_path: Path, record: dict) -> None:
    started = {k: record[k] for k in ("schema", "name", "task", "model", "data", "environment")}
    started |= {"baseline": None, "steps": [], "targets": {}, "recommendation": None}

    paths = write_reports(started, tmp_path)

    md = paths["report.md"].read_text()
    assert _table_rows(_section(md, "Progression")) == []
    assert "No targets set." in md and "No recommendation yet." in md
    assert set(paths) == {"report.md", "report.html", "plots/overview.png"}


def _as_binary(record: dict) -> dict:
    binary = copy.deepcopy(record)
    binary["task"], binary["primary_metric"] = "binary", "auc"
    for i, entry in enumerate([binary["baseline"], *binary["artifacts"]]):
        entry["primary_metric"] = "auc"
        entry["metrics"] = {"samples": 114, "auc": 0.9712 - i / 1000, "f1": 0.95, "precision": 0.96,
                            "recall": 0.94, "accuracy": 0.947, "threshold": 0.5}  # fmt: skip
    binary["steps"] = [
        dict(s, artifact=a) for s, a in zip(binary["steps"], binary["artifacts"], strict=True)
    ]
    return binary


def test_binary_record_renders_auc(tmp_path: Path, record: dict) -> None:
    paths = write_reports(_as_binary(record), tmp_path)

    md = paths["report.md"].read_text()
    progression = _section(md, "Progression")
    assert "| top-1 |" not in progression and "| AUC |" in progression
    assert "| 0.9712 |" in _table_rows(progression)[0]
    assert "| artifact | AUC | F1 | precision | recall | accuracy at threshold |" in md
    assert "Per-class accuracy" not in md
    assert "plots/confusion_matrix.png" not in paths and "plots/latency_vs_metric.png" in paths


@pytest.mark.parametrize(
    ("formatter", "value", "expected"),
    [
        (fmt.size_mb, 28144, "0.0281"),
        (fmt.size_mb, 3_512_345_678, "3,510"),
        (fmt.ms, 0.9699965, "0.970"),
        (fmt.ms, 12.0, "12.0"),
        (fmt.ms, 0.99996, "1.00"),
        (fmt.sig, 1.7053e-12, "1.71e-12"),
        (fmt.sig, 0, "0"),
        (fmt.count, 6442, "6.44K"),
        (fmt.count, 165696, "166K"),
        (fmt.count, 999_999, "1.00M"),
        (fmt.count, 2.3e9, "2.30G"),
        (fmt.count, 950, "950"),
        (fmt.ratio, 2.4139, "2.41×"),
        (fmt.ratio, 25.94544, "25.95×"),
        (fmt.delta_pt, 0.28, "+0.28 pt"),
        (fmt.delta_pt, -1.5, "-1.50 pt"),
        (fmt.delta_pt, -0.001, "+0.00 pt"),
        (fmt.pct, 0.975, "97.5%"),
        (fmt.metric, 0.10833, "0.1083"),
        (fmt.metric, float("nan"), "NaN"),
        (fmt.ms, None, "—"),
        (fmt.count, "n/a", "—"),
        (fmt.ratio, True, "—"),
    ],
)
def test_format_helpers(formatter: Any, value: Any, expected: str) -> None:
    assert formatter(value) == expected


def test_format_latency_and_throughput_name_their_batch() -> None:
    assert fmt.latency_pair(0.97, 1.0336, batch=1) == "0.970 / 1.03"
    assert fmt.latency_pair(1.48, 1.62, batch=32) == "1.48 / 1.62 @b32"
    assert fmt.throughput(21616.5, 32) == "21.6K @b32"
    assert fmt.check(True) == "✓" and fmt.check(False) == "✗" and fmt.check(None) == "—"


def test_terminal_progression_table(troubled: dict) -> None:
    table = terminal.progression_table(troubled)

    text = _text(table)
    assert table.row_count == len(troubled["steps"]) + 1
    headers = [str(c.header).replace("\n", " ") for c in table.columns]  # two-line headers
    assert headers[:4] == ["step", "format", "precision", "status"]
    assert {"size MB", "speedup", "top-1", "Δ pt", "agreement", "notes"} <= set(headers)
    assert not {"MACs", "params", "verify max |Δ|"} & set(headers)  # report.md has those
    assert "25.95×" in text and "degraded" in text
    assert "[liter" in text  # an error's brackets are not swallowed as rich markup


def test_terminal_targets_table(record: dict) -> None:
    table = terminal.targets_table(record)

    assert table is not None and table.row_count == 1
    assert [str(c.header) for c in table.columns] == ["target", "wanted", "measured", "met"]
    assert "max_size_mb" in _text(table)
    assert terminal.targets_table({**record, "targets": {}}) is None


def test_terminal_artifact_table(record: dict) -> None:
    onnx = record["steps"][1]["artifact"]

    table = terminal.artifact_table(onnx, "classification")

    lines = _text(table).splitlines()
    assert any("latency p50 / p90 (batch 1)" in ln and "0.0374 / 0.0456 ms" in ln for ln in lines)
    assert any("latency p50 / p90 (batch 32)" in ln and "0.138 / 0.155 ms" in ln for ln in lines)
    assert any("throughput" in ln and "232K/s at batch 32" in ln for ln in lines)
    assert any("top-5" in ln and "0.4861" in ln for ln in lines)
    assert any("per-class accuracy" in ln and "5:98%" in ln for ln in lines)
    assert table.row_count == 19


def test_html_render_without_plots_says_no_plots_section(record: dict) -> None:
    page = html.render(record)

    assert "data:image/png" not in page and "<h2>Plots</h2>" not in page
    assert page.startswith("<!DOCTYPE html>")


def test_importing_report_does_not_import_matplotlib() -> None:
    code = "import sys, modelpress.report; print('matplotlib' in sys.modules)"

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "False"


def test_training_steps_show_what_the_teacher_added(record: dict) -> None:
    record = copy.deepcopy(record)
    art = copy.deepcopy(record["baseline"])
    art |= {
        "name": "student",
        "metrics": {"top1": 0.95},
        "details": {"student": "zoo:dscnn", "epochs": 6, "best_epoch": 5},
    }
    record["steps"].append(
        {
            "index": 9,
            "name": "distill",
            "type": "distill",
            "status": "ok",
            "artifact": art,
            "scratch": {"metrics": {"top1": 0.91}},
        }
    )
    text = markdown.render(record)
    assert "## Training steps" in text
    section = text.split("## Training steps", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith("| 9. distill"))
    assert "student zoo:dscnn" in row and "0.9100" in row and "+4.00 pt" in row
    assert terminal.training_table(record) is not None


def test_training_steps_show_a_pruned_model_before_and_after_fine_tuning(record: dict) -> None:
    record = copy.deepcopy(record)
    art = copy.deepcopy(record["baseline"])
    art |= {
        "name": "pruned",
        "metrics": {"top1": 0.93},
        "details": {
            "method": "structured",
            "ratio": 0.5,
            "before_finetune": {"top1": 0.61},
            "finetune": {"epochs": 3, "best_epoch": 3},
        },
    }
    step = {"index": 4, "name": "prune", "type": "prune", "status": "ok", "artifact": art}
    record["steps"].append(step)
    section = markdown.render(record).split("## Training steps", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith("| 4. prune"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:6] == ["structured 0.5", "3", "3", "0.6100", "0.9300"]


def test_a_classification_run_with_troubled_steps_has_no_detection_table(
    tmp_path: Path, troubled: dict
) -> None:
    paths = write_reports(troubled, tmp_path)  # a degraded artifact and a failed step
    assert "Detection benchmark" not in paths["report.md"].read_text()
    assert "Detection benchmark" not in paths["report.html"].read_text()
    assert terminal.task_tables(troubled) == []


def _as_detection(record: dict) -> dict:
    """The sample as a detection run: mAP metrics and end-to-end times (model + NMS)."""
    record["task"], record["primary_metric"] = "detection", "map50_95"
    for i, entry in enumerate([record["baseline"], *(s["artifact"] for s in record["steps"])]):
        entry["metrics"] = {"map50_95": 0.41 - i / 100, "map50": 0.62, "precision": 0.7,
                            "recall": 0.5}  # fmt: skip
        entry["end_to_end_ms"] = {"median": 8.0, "postprocess_median": 2.0,
                                  "postprocess": "decode + NMS"}  # fmt: skip
    return record


def test_a_detection_run_brings_its_table_to_every_report(tmp_path: Path, record: dict) -> None:
    detection = _as_detection(record)
    paths = write_reports(detection, tmp_path)
    md, page = paths["report.md"].read_text(), paths["report.html"].read_text()
    section = _section(md, "Detection benchmark")
    assert _table_rows(section)[0].split("|")[-3:-1] == [" 25.0% ", " 125 "]  # NMS share, FPS
    assert "end-to-end: the model, then decode + NMS, timed together" in section
    assert "<h2>Detection benchmark</h2>" in page and "decode + NMS, timed together" in page
    [table] = terminal.task_tables(detection)
    assert "NMS share" in _text(table) and "decode + NMS" in _text(table)


def test_no_report_writer_names_a_task() -> None:
    """A task's report sections come from the task (``Task.report_sections``): the writers
    lay out whatever it names, and every name a task gives is a section the report builds."""
    from modelpress.report import sections
    from modelpress.report.sections.tasks import registered_sections
    from modelpress.tasks import get_task, task_names

    for writer in (markdown, html, terminal):
        assert "detection" not in Path(writer.__file__).read_text().lower(), writer.__name__
    named = {name for task in task_names() for name in get_task(task).report_sections}
    assert named and named <= set(registered_sections())
    assert sections.task_sections({"task": "classification"}) == []


def _crowded(record: dict[str, Any], n: int = 12) -> dict[str, Any]:
    """``n`` artifacts with long names measured almost alike (exports of one model are)."""
    template = record["steps"][1]
    record["steps"] = []
    for i in range(n):
        step = copy.deepcopy(template)
        step["index"], step["name"] = i + 1, f"export-{i}"
        art = step["artifact"]
        art["name"] = f"student-pruned-{i}-onnx-int8-percentile"
        art["latency_ms"] = {**art["latency_ms"], "median": 0.30 + 0.002 * i}
        art["latency_by_batch"] = []
        art["metrics"] = {**art["metrics"], "top1": 0.95 + 0.0005 * (i % 3)}
        record["steps"].append(step)
    record["recommendation"]["name"] = record["steps"][5]["artifact"]["name"]
    return record


def _drawn_texts(ax: Any) -> list[Any]:
    """Every text a plot draws: title, axis labels, the tick labels within the limits, the
    legend's entries."""
    texts = [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.get_legend().get_texts()]
    for axis, labels, at in (
        (ax.xaxis, ax.get_xticklabels(), 0),
        (ax.yaxis, ax.get_yticklabels(), 1),
    ):
        lo, hi = sorted(axis.get_view_interval())
        texts += [t for t in labels if lo <= t.get_position()[at] <= hi]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def test_the_latency_vs_quality_labels_never_overlap(record: dict) -> None:
    from modelpress.report import plots

    fig = plots.latency_vs_metric_figure(_crowded(record))
    assert fig is not None
    fig.canvas.draw()  # laid out as saved: the legend placed, the ticks chosen
    renderer = fig.canvas.get_renderer()
    texts = _drawn_texts(fig.axes[0])
    names = [t.get_text() for t in texts]
    # every artifact is named once, the recommended one said to be
    assert sum("student-pruned-" in n for n in names) == 12 and "baseline" in names
    assert "student-pruned-5-onnx-int8-percentile (recommended)" in names
    page = fig.bbox
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    for name, box in boxes:  # nothing cut off at the figure's edge
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0, name
        assert box.y1 <= page.y1, name
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            overlap_w = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            overlap_h = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            assert overlap_w <= 0 or overlap_h <= 0, f"{a!r} overlaps {b!r}"
    axes = fig.axes[0].get_window_extent(renderer)  # the names sit beside the points
    for name, box in boxes:
        if "student-pruned-" in name or name == "baseline":
            assert box.x0 >= axes.x1, f"{name} is drawn over the axes"
    plots.pyplot().close(fig)


def test_plot_helpers_are_public_for_other_reports() -> None:
    """search's Pareto plot and the cascade's figures draw with the report's own helpers."""
    from modelpress.report.plots import png, pyplot

    fig, ax = pyplot().subplots()
    ax.plot([0, 1], [1, 0])

    assert png(fig).startswith(PNG_MAGIC)
    assert not pyplot().get_fignums()  # png closed the figure: nothing left open
