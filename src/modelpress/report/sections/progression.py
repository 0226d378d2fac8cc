"""The run at a glance: one row per artifact in pipeline order (``progression``), and each
technique applied alone to the baseline (``techniques``, from ``modelpress compare``)."""

from __future__ import annotations

from typing import Any

from modelpress.report import format as fmt
from modelpress.report.sections.base import (
    RECOMMENDED_MARK,
    UNRELIABLE_MARK,
    Entry,
    Grid,
    entries,
    entry_label,
    latency_at,
    metric_label,
    metrics_of,
    one_line,
    primary_key,
    recommended,
    steps,
)
from modelpress.tasks import find_task

PROGRESSION_HEADERS = [
    "step", "format", "precision", "status", "size MB", "params", "MACs",
    "latency ms p50 / p90", "speedup", "throughput/s", "peak MB (measuring)",
    "peak MB (own process)", "{metric}", "Δ pt", "verify max |Δ|", "{verify}", "notes",
]  # fmt: skip
_PROGRESSION_NUMERIC = set(range(4, 16))


def own_process_mb(entry: Entry) -> str:
    """The artifact's peak memory measured in a process of its own (— where not measured)."""
    own = entry.get("peak_memory_own_process")
    return fmt.mb(own.get("mb")) if isinstance(own, dict) else fmt.MISSING


def memory_legend(record: dict[str, Any]) -> str:
    """What the two peak memory columns measure ("" for a record without the second)."""
    if not any(isinstance(e.get("peak_memory_own_process"), dict) for e in entries(record)):
        return ""
    return (
        "peak MB: resident memory at its highest, at the throughput batch; measuring: the "
        "process that evaluated and timed it (modelpress's own for torch formats, torch and "
        "every runtime loaded; a process of its own for ONNX, LiteRT and OpenVINO files, so a "
        "runtime that crashes costs only its artifact), own process: a fresh process that "
        "loads only the artifact's runtime and file (none for a model held in memory or a .pt "
        "checkpoint)"
    )


def _verified_by(record: dict[str, Any]) -> str:
    """What verification judges for the record's task (``Task.verified_by``): cosine for
    fidelity outputs, else agreement."""
    task = find_task(record.get("task"))
    return task.verified_by if task else "agreement"


def _entry_cells(entry: Entry, key: str, status: Any, verified_by: str) -> list[str]:
    lat = latency_at(entry)
    verification = entry.get("verification") or {}
    metrics = metrics_of(entry)
    return [
        fmt.text(entry.get("format")),
        fmt.text(entry.get("precision")),
        fmt.text(status),
        fmt.size_mb(entry.get("size_bytes")),
        fmt.count(entry.get("params")),
        fmt.count(entry.get("macs")),
        fmt.latency_pair(lat.get("median"), lat.get("p90"), lat.get("batch"))
        + (f" {UNRELIABLE_MARK}" if lat.get("unreliable") else ""),
        fmt.ratio(entry.get("speedup")),
        fmt.throughput(entry.get("throughput_per_s"), entry.get("throughput_batch")),
        fmt.mb(entry.get("peak_memory_mb")),
        own_process_mb(entry),
        fmt.metric(metrics.get(key)),
        fmt.delta_pt(entry.get("metric_delta_pt")),
        fmt.sig(verification.get("max_abs_diff")),
        fmt.pct(verification.get("agreement"))
        if verified_by == "agreement"
        else fmt.sig(verification.get(verified_by), 4),
    ]


def progression(record: dict[str, Any]) -> Grid:
    """One row for the baseline, then one per step, failed and skipped ones included."""
    key = primary_key(record)
    by = _verified_by(record)
    headers = [
        h.replace("{metric}", metric_label(key)).replace("{verify}", by)
        for h in PROGRESSION_HEADERS
    ]
    grid = Grid("Progression", headers, numeric=set(_PROGRESSION_NUMERIC))
    rec = recommended(record)
    baseline = record.get("baseline")
    if isinstance(baseline, dict):
        notes = "; ".join(map(str, baseline.get("notes") or []))
        grid.rows.append(
            [
                entry_label(baseline, rec),
                *_entry_cells(baseline, key, baseline.get("status"), by),
                one_line(notes),
            ]
        )
    for step in steps(record):
        label = f"{step.get('index', '?')}. {fmt.text(step.get('name'))}"
        art = step.get("artifact")
        if isinstance(art, dict):
            label += f" {RECOMMENDED_MARK}" if art is rec else ""
            cells = _entry_cells(art, key, step.get("status") or art.get("status"), by)
        else:
            config = step.get("config") or {}
            cells = [fmt.text(config.get("format")), fmt.text(config.get("precision"))]
            cells += [fmt.text(step.get("status"))] + [fmt.MISSING] * 12
        notes = step.get("error") or "; ".join(map(str, (art or {}).get("notes") or []))
        grid.rows.append([label, *cells, one_line(str(notes))])
    return grid


TECHNIQUE_HEADERS = [
    "technique", "format", "precision", "status", "size MB", "latency ms p50 / p90", "speedup",
    "throughput/s", "peak MB (own process)", "{metric}", "Δ pt", "best for", "notes",
]  # fmt: skip


def techniques(record: dict[str, Any]) -> Grid | None:
    """Each technique applied alone to the baseline (``modelpress compare``), the baseline
    first for reference, with the best for size, speed and accuracy named; None without one."""
    rows = record.get("techniques")
    if not isinstance(rows, list) or not rows:
        return None
    key = primary_key(record)
    headers = [h.replace("{metric}", metric_label(key)) for h in TECHNIQUE_HEADERS]
    grid = Grid("Techniques compared", headers, numeric=set(range(4, 11)))
    base = record.get("baseline")
    if isinstance(base, dict):
        lat = latency_at(base)
        grid.rows.append(
            [
                "baseline",
                fmt.text(base.get("format")),
                fmt.text(base.get("precision")),
                fmt.text(base.get("status")),
                fmt.size_mb(base.get("size_bytes")),
                fmt.latency_pair(lat.get("median"), lat.get("p90"), lat.get("batch")),
                fmt.ratio(1.0),
                fmt.throughput(base.get("throughput_per_s"), base.get("throughput_batch")),
                fmt.mb((base.get("peak_memory_own_process") or {}).get("mb")),
                fmt.metric(metrics_of(base).get(key)),
                fmt.delta_pt(0.0),
                "",
                "the model as given",
            ]
        )
    for row in rows:
        row = row if isinstance(row, dict) else {}
        slower = row.get("slower_than_fp32")
        notes = row.get("error") or (
            f"slower than its FP32 sibling ({fmt.ratio((slower or {}).get('ratio'))})"
            if slower
            else ""
        )
        grid.rows.append(
            [
                fmt.text(row.get("technique")),
                fmt.text(row.get("format")),
                fmt.text(row.get("precision")),
                fmt.text(row.get("status")),
                fmt.size_mb(row.get("size_bytes")),
                fmt.latency_pair(row.get("latency_ms"), row.get("latency_p90_ms"), None),
                fmt.ratio(row.get("speedup")),
                fmt.throughput(row.get("throughput_per_s"), None),
                fmt.mb(row.get("peak_memory_own_process_mb")),
                fmt.metric((row.get("metrics") or {}).get(key)),
                fmt.delta_pt(row.get("metric_delta_pt")),
                ", ".join(map(str, row.get("best_for") or [])),
                one_line(str(notes)),
            ]
        )
    return grid


def best_techniques(record: dict[str, Any]) -> str | None:
    """``best for size: static-onnx · speed: ... · accuracy: ...``, or None."""
    rows = [r for r in record.get("techniques") or [] if isinstance(r, dict)]
    parts = []
    for what in ("size", "speed", "accuracy"):
        names = [str(r.get("technique")) for r in rows if what in (r.get("best_for") or [])]
        parts.append(f"{what}: {', '.join(names) if names else fmt.MISSING}")
    return "best for " + " · ".join(parts) if rows else None
