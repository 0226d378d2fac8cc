"""The detection task's section: a ``yolo benchmark``-like table of mAP and speed, the model
alone and end to end (decode + NMS). ``Task.report_sections`` of the detection task names it."""

from __future__ import annotations

from typing import Any

from modelpress.report import format as fmt
from modelpress.report.sections.base import (
    Grid,
    entries,
    latency_at,
    megabytes,
    metric_cell,
    metrics_of,
)
from modelpress.report.sections.tasks import TaskSection, task_section

DETECTION_HEADERS = (
    "artifact",
    "format",
    "status",
    "size MB",
    "mAP50-95",
    "mAP50",
    "P",
    "R",
    "model ms",
    "end-to-end ms",
    "NMS share",
    "FPS",
)


def detection_benchmark(record: dict[str, Any]) -> Grid | None:
    """Like ``yolo benchmark``: each artifact's size, mAP, precision / recall, and its speed
    at batch 1 as the model alone and end to end (model + decode + NMS, measured in one loop);
    FPS is end-to-end images per second. None when no entry timed a postprocess (a
    classification run: its degraded or failed artifacts are no detection rows)."""
    if not any(isinstance(e.get("end_to_end_ms"), dict) for e in entries(record)):
        return None
    grid = Grid("Detection benchmark", list(DETECTION_HEADERS), numeric=set(range(3, 12)))
    for entry in entries(record):
        e2e = entry.get("end_to_end_ms")
        m = metrics_of(entry)
        if not isinstance(e2e, dict) and entry.get("status") == "ok":
            continue
        e2e = e2e if isinstance(e2e, dict) else {}
        total = fmt.finite(e2e.get("median"))
        post = fmt.finite(e2e.get("postprocess_median"))
        grid.rows.append(
            [
                fmt.text(entry.get("name")),
                f"{fmt.text(entry.get('format'))} {fmt.text(entry.get('precision'))}",
                fmt.text(entry.get("status")),
                fmt.mb(megabytes(entry.get("size_bytes"))),
                metric_cell("map50_95", m.get("map50_95")),
                metric_cell("map50", m.get("map50")),
                metric_cell("precision", m.get("precision")),
                metric_cell("recall", m.get("recall")),
                fmt.ms(latency_at(entry).get("median")),
                fmt.ms(total),
                fmt.pct(post / total) if total and post is not None else fmt.MISSING,
                f"{1000.0 / total:.0f}" if total else fmt.MISSING,
            ]
        )
    return grid if grid.rows else None


def detection_legend(record: dict[str, Any]) -> str:
    """What the end-to-end column holds."""
    for entry in entries(record):
        e2e = entry.get("end_to_end_ms")
        if isinstance(e2e, dict):
            return (
                "batch 1, medians · end-to-end: the model, then "
                f"{e2e.get('postprocess', 'its postprocess')}, timed together · NMS share: the "
                "postprocess alone over end-to-end · FPS: 1000 / end-to-end ms"
            )
    return ""


@task_section("detection_benchmark")
def detection_section(record: dict[str, Any]) -> TaskSection | None:
    grid = detection_benchmark(record)
    return TaskSection(grid, detection_legend(record)) if grid is not None else None
