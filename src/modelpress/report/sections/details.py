"""The details below the tables: every metric, per-class accuracy, every note, the
environment, and one artifact's facts for ``modelpress bench``."""

from __future__ import annotations

from typing import Any

from modelpress.report import format as fmt
from modelpress.report.sections.base import (
    UNRELIABLE_MARK,
    Entry,
    Grid,
    Note,
    entries,
    entry_label,
    latency_at,
    metric_cell,
    metric_label,
    metrics_of,
    recommended,
    steps,
    task_primary,
)
from modelpress.report.sections.int8 import coverage_summary

_NOT_METRICS = {"samples", "per_class", "confusion_matrix", "threshold"}


def fixed_batch_note(entry: Entry, asked: list[Any]) -> str | None:
    """Why a fixed-batch artifact has no latency or throughput at the other batch sizes."""
    fixed = entry.get("fixed_batch")
    if fixed is None:
        return None
    missing = entry.get("batches_not_measured")
    if missing is None:  # records written before the field
        measured = {b.get("batch") for b in entry.get("latency_by_batch") or []}
        missing = [b for b in asked if b not in measured]
    if not missing:
        return None
    why = (
        "litert-torch converts at batch 1 and this graph (a reshape fixed at batch 1) cannot be "
        "resized by the LiteRT interpreter"
        if entry.get("runtime") == "litert"
        else f"its input declares a fixed batch of {fixed}"
    )
    sizes = ", ".join(map(str, missing))
    return (
        f"runs at batch {fixed} only ({why}): no latency or throughput at batch {sizes}; "
        f"its throughput is measured at batch {fixed}"
    )


def scalar_metrics(entry: Entry) -> dict[str, Any]:
    """Metrics that are one number each (per-class and the confusion matrix left out)."""
    metrics = metrics_of(entry)
    return {k: v for k, v in metrics.items() if k not in _NOT_METRICS and fmt.number(v) is not None}


def metrics(record: dict[str, Any]) -> Grid | None:
    """Every scalar metric of every artifact (F1, recall… for binary; top-5 for classification)."""
    rows = entries(record)
    keys: list[str] = []
    for entry in rows:
        keys += [k for k in scalar_metrics(entry) if k not in keys]
    if not keys:
        return None
    headers = ["artifact", *map(metric_label, keys)]
    grid = Grid("Metrics", headers, numeric=set(range(1, len(headers))))
    rec = recommended(record)
    for entry in rows:
        values = metrics_of(entry)
        grid.rows.append([entry_label(entry, rec), *(metric_cell(k, values.get(k)) for k in keys)])
    return grid


def per_class(record: dict[str, Any]) -> Grid | None:
    """Per-class accuracy of the baseline and the recommended artifact (classification)."""
    baseline = record.get("baseline") if isinstance(record.get("baseline"), dict) else None
    rec = recommended(record)
    candidates = [baseline] if rec is None or rec is baseline else [baseline, rec]
    columns = [e for e in candidates if e and isinstance(metrics_of(e).get("per_class"), dict)]
    if not columns:
        return None
    tables = [e["metrics"]["per_class"] for e in columns]
    headers = ["class", *(fmt.text(e.get("name")) for e in columns)]
    both = len(columns) == 2
    grid = Grid("Per-class accuracy", headers + (["Δ pt"] if both else []))
    grid.numeric = set(range(1, len(grid.headers)))
    classes = list(dict.fromkeys(k for t in tables for k in t))
    for c in classes:
        values = [t.get(c) for t in tables]
        row = [str(c), *(fmt.pct(v) for v in values)]
        if both:
            a, b = (fmt.number(v) for v in values)
            row.append(fmt.delta_pt(None if a is None or b is None else 100 * (b - a)))
        grid.rows.append(row)
    return grid


def notes(record: dict[str, Any]) -> list[Note]:
    """Every artifact's notes and every step error, verbatim, in pipeline order."""
    out: list[Note] = []
    baseline = record.get("baseline")
    asked = [b.get("batch") for b in (baseline or {}).get("latency_by_batch") or []]
    if isinstance(baseline, dict):
        name = fmt.text(baseline.get("name"))
        out += [Note(name, "note", str(n)) for n in baseline.get("notes") or []]
    for step in steps(record):
        where = f"step {step.get('index', '?')} {step.get('name')}"
        art = step.get("artifact") if isinstance(step.get("artifact"), dict) else {}
        name = fmt.text(art.get("name")) if art else where
        out += [Note(name, "note", str(n)) for n in art.get("notes") or []]
        fixed = fixed_batch_note(art, asked) if art else None
        if fixed:
            out.append(Note(name, "note", fixed))
        if step.get("error"):
            out.append(Note(f"{where} ({step.get('status')})", "error", str(step["error"])))
    return out


def environment(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, value) pairs: python, platform, CPU model and flags, cores, threads."""
    env = record.get("environment") or {}
    cpu = env.get("cpu") or {}
    flags = cpu.get("flags")
    return [
        ("python", fmt.text(env.get("python"))),
        ("platform", fmt.text(env.get("platform"))),
        ("cpu", fmt.text(cpu.get("model"))),
        ("cpu flags", ", ".join(map(str, flags)) if flags else fmt.MISSING),
        ("logical cores", fmt.text(env.get("logical_cores"))),
        ("threads", fmt.text(env.get("threads"))),
    ]


def packages(record: dict[str, Any]) -> list[tuple[str, str]]:
    found = (record.get("environment") or {}).get("packages") or {}
    return [(str(k), fmt.text(v)) for k, v in found.items()]


def artifact_facts(entry: Entry, task: str) -> list[tuple[str, str]]:
    """One artifact's analysis as (key, value) lines, for ``modelpress bench``."""
    facts = [
        ("name", fmt.text(entry.get("name"))),
        ("format", fmt.text(entry.get("format"))),
        ("precision", fmt.text(entry.get("precision"))),
        ("runtime", fmt.text(entry.get("runtime"))),
        ("status", fmt.text(entry.get("status"))),
        ("size", _unit(fmt.size_mb(entry.get("size_bytes")), "MB") + _kind(entry)),
        ("params", fmt.count(entry.get("params"))),
        ("MACs", fmt.count(entry.get("macs"))),
    ]
    by_batch = [b for b in entry.get("latency_by_batch") or [] if isinstance(b, dict)]
    for lat in by_batch or [entry.get("latency_ms") or {}]:
        pair = fmt.latency_pair(lat.get("median"), lat.get("p90"))
        facts.append((f"latency p50 / p90 (batch {fmt.text(lat.get('batch'))})", _unit(pair, "ms")))
    fixed = fixed_batch_note(entry, [])
    if fixed:
        facts.append(("other batch sizes", fixed))
    reasons = (entry.get("latency_ms") or {}).get("unreliable") or []
    if reasons:
        facts.append((f"{UNRELIABLE_MARK} timings unreliable", "; ".join(map(str, reasons))))
    batch = fmt.number(entry.get("throughput_batch"))
    at_batch = f" at batch {batch:.0f}" if batch is not None else ""
    throughput = fmt.count(entry.get("throughput_per_s"))
    facts.append(
        ("throughput", throughput + ("/s" + at_batch if throughput != fmt.MISSING else ""))
    )
    facts.append(
        ("peak memory (measuring process)", _unit(fmt.mb(entry.get("peak_memory_mb")), "MB"))
    )
    if "peak_memory_own_process" in entry:  # records before it have no such line
        facts.append(("peak memory (own process)", own_process_fact(entry)))
    facts.append(("threads", fmt.text(latency_at(entry).get("threads"))))
    if isinstance(entry.get("int8_coverage"), dict):
        facts.append(("int8 coverage", coverage_summary(entry["int8_coverage"])))
    facts += [(metric_label(k), metric_cell(k, v)) for k, v in scalar_metrics(entry).items()]
    per = metrics_of(entry).get("per_class")
    if isinstance(per, dict) and per:
        compact = "  ".join(f"{c}:{fmt.pct(v, 0)}" for c, v in per.items())
        facts.append(("per-class accuracy", compact))
    for key in ("speedup", "size_ratio"):
        if fmt.number(entry.get(key)) is not None:
            facts.append((key.replace("_", " "), fmt.ratio(entry.get(key))))
    if fmt.number(entry.get("metric_delta_pt")) is not None:
        key = task_primary(task)
        facts.append((f"Δ {metric_label(key)}", fmt.delta_pt(entry["metric_delta_pt"])))
    return facts


def own_process_fact(entry: Entry) -> str:
    """``64.5 MB at batch 32 (onnxruntime imported 47.3 MB, model loaded 55.9 MB)``, or why
    there is no figure."""
    own = entry.get("peak_memory_own_process")
    if not isinstance(own, dict):
        return fmt.MISSING
    if "mb" not in own:
        return f"not measured: {own.get('error') or own.get('skipped') or 'no reason recorded'}"
    text = f"{fmt.mb(own['mb'])} MB at batch {fmt.text(own.get('batch'))}"
    before = [
        f"{label} {fmt.mb(own[key])} MB"
        for label, key in ((f"{own.get('runtime', 'runtime')} imported", "idle_mb"),
                           ("model loaded", "loaded_mb"))
        if fmt.number(own.get(key)) is not None
    ]  # fmt: skip
    return text + (f" ({', '.join(before)})" if before else "")


def _kind(entry: Entry) -> str:
    kind = entry.get("size_kind")
    return f" ({_SIZE_KINDS.get(kind, kind)})" if kind else ""


_SIZE_KINDS = {"state_dict": "weights as torch.save stores them", "file": "the deployed file"}


def _unit(value: str, unit: str) -> str:
    return value if value == fmt.MISSING else f"{value} {unit}"
