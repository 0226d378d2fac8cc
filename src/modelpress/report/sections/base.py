"""What every section reads from a record: the table type (``Grid``), the marks, record
access (entries, the recommended one, latency at a batch, metrics) and the title and summary.

Every accessor tolerates a partial record (a run still going, a failed baseline, null fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelpress.evaluate.metrics import METRICS
from modelpress.report import format as fmt
from modelpress.tasks import find_task

Entry = dict[str, Any]

RECOMMENDED_MARK = "★"
UNRELIABLE_MARK = "⚠"  # timings taken on a busy machine (see ``unreliable``)
SLOWER_MARK = "⚠"  # a quantized artifact slower than its FP32 sibling (see ``versus_fp32``)
_SHORT_METRIC = {
    "top1": "top-1",
    "top5": "top-5",
    "auc": "AUC",
    "f1": "F1",
    "map50_95": "mAP50-95",
    "map50": "mAP50",
}


@dataclass
class Grid:
    """A table of display strings; ``numeric`` marks the columns to right-align."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    numeric: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Note:
    source: str  # artifact name, or "step 3 export-tflite"
    kind: str  # "note" or "error"
    text: str


# ---------------------------------------------------------------------- record access
def primary_key(record: dict[str, Any]) -> str:
    return record.get("primary_metric") or task_primary(record.get("task"))


def task_primary(name: Any) -> str:
    """The primary metric of the task named ``name`` (top-1 for one this modelpress lacks)."""
    task = find_task(name)
    return task.primary if task else "top1"


def metric_label(key: str) -> str:
    """Short column name for a metric: top-1, AUC, cosine, max |Δ|."""
    if key in _SHORT_METRIC:
        return _SHORT_METRIC[key]
    info = METRICS.get(key)
    return info.label.removesuffix(" to reference") if info else key


def steps(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in record.get("steps") or [] if isinstance(s, dict)]


def entries(record: dict[str, Any]) -> list[Entry]:
    """Every measured artifact in pipeline order: the baseline, then each step's artifact."""
    out = [record["baseline"]] if isinstance(record.get("baseline"), dict) else []
    return out + [s["artifact"] for s in steps(record) if isinstance(s.get("artifact"), dict)]


def recommended(record: dict[str, Any]) -> Entry | None:
    """The recommended artifact's entry, matched by name, then by path."""
    rec = record.get("recommendation") or {}
    for rec_key, entry_key in (("name", "name"), ("artifact", "path")):
        wanted = rec.get(rec_key)
        found = [e for e in entries(record) if wanted and e.get(entry_key) == wanted]
        if found:
            return found[0]
    return None


def latency_at(entry: Entry, batch: int = 1) -> dict[str, Any]:
    """Latency stats at ``batch`` when measured there, else the headline ``latency_ms``."""
    for lat in entry.get("latency_by_batch") or []:
        if isinstance(lat, dict) and lat.get("batch") == batch:
            return lat
    return entry.get("latency_ms") or {}


def entry_label(entry: Entry, rec: Entry | None) -> str:
    name = fmt.text(entry.get("name"))
    return f"{name} {RECOMMENDED_MARK}" if rec is not None and entry is rec else name


def metrics_of(entry: Entry) -> dict[str, Any]:
    metrics = entry.get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def one_line(text: str, limit: int = 160) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


# ---------------------------------------------------------------------- sections
def title(record: dict[str, Any]) -> str:
    model = (record.get("model") or {}).get("source")
    return f"modelpress report: {record.get('name') or 'run'}" + (f" — {model}" if model else "")


def summary(record: dict[str, Any]) -> str:
    """One paragraph: task, data, threads, CPU and how the steps went."""
    data = record.get("data") or {}
    env = record.get("environment") or {}
    text = f"Task {record.get('task') or 'unknown'}, judged by {metric_label(primary_key(record))}"
    if data.get("source"):
        text += f" on {data['source']}"
    sizes = [f"{data[k]} {k}" for k in ("train", "calibration", "validation") if k in data]
    if data.get("num_classes"):
        sizes.append(f"{data['num_classes']} classes")
    if sizes:
        text += f" ({', '.join(sizes)})"
    threads = env.get("threads") or latency_at(record.get("baseline") or {}).get("threads")
    cpu = (env.get("cpu") or {}).get("model") or "an unknown CPU"
    unit = "thread" if threads == 1 else "threads"
    text += f". Latency measured with {fmt.text(threads)} {unit} on {cpu}"
    text += f" ({env['logical_cores']} logical cores)." if env.get("logical_cores") else "."
    statuses = [str(s.get("status")) for s in steps(record)]
    if statuses:
        tally = ", ".join(f"{statuses.count(x)} {x}" for x in dict.fromkeys(statuses))
        text += f" {len(statuses)} steps: {tally}."
    return text


def metric_cell(key: str, value: Any) -> str:
    """Scores in [0, 1] to 4 decimals; differences and counts to 3 significant digits."""
    info = METRICS.get(key)
    return fmt.metric(value) if info and info.higher_is_better else fmt.sig(value)


def megabytes(size_bytes: Any) -> float | None:
    value = fmt.finite(size_bytes)
    return None if value is None else value / 1e6
