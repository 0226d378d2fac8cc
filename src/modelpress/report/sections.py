"""The report's content as plain strings, read from a record once for every view.

Markdown, HTML and the terminal only lay these out, so a number reads the same everywhere.
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
_NOT_METRICS = {"samples", "per_class", "confusion_matrix", "threshold"}
# The comparison each target makes, by name prefix (max_size_mb → ≤, min_speedup → ≥).
_COMPARATOR = {"max": "≤", "min": "≥"}


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
    return record.get("primary_metric") or _task_primary(record.get("task"))


def _task_primary(name: Any) -> str:
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


def _label(entry: Entry, rec: Entry | None) -> str:
    name = fmt.text(entry.get("name"))
    return f"{name} {RECOMMENDED_MARK}" if rec is not None and entry is rec else name


def metrics_of(entry: Entry) -> dict[str, Any]:
    metrics = entry.get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def _one_line(text: str, limit: int = 160) -> str:
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
                _label(baseline, rec),
                *_entry_cells(baseline, key, baseline.get("status"), by),
                _one_line(notes),
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
        grid.rows.append([label, *cells, _one_line(str(notes))])
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
                _one_line(str(notes)),
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


_TRAINED = ("distill", "prune", "qat")


def _training_row(step: dict[str, Any], key: str, teacher: Any) -> list[str]:
    art = step.get("artifact") or {}
    details = art.get("details") or {}
    run = details.get("finetune") or details  # prune nests its fine-tune
    what = {
        "distill": f"student {fmt.text(details.get('student'))}",
        "prune": f"{fmt.text(details.get('method'))} {fmt.text(details.get('ratio'))}",
        "qat": "with teacher" if details.get("teacher") else "hard labels",
    }.get(str(step.get("type")), "")
    value = metrics_of(art).get(key)
    before = (details.get("before_finetune") or {}).get(key)  # structured pruning, untuned
    scratch = metrics_of(step.get("scratch") or {}).get(key)
    added = (
        (value - scratch) * 100 if isinstance(value, float | int) and scratch is not None else None
    )
    return [
        f"{step.get('index', '?')}. {fmt.text(step.get('name'))}",
        what,
        fmt.text(run.get("epochs")),
        fmt.text(run.get("best_epoch")),
        fmt.metric(before),
        fmt.metric(value),
        fmt.metric(scratch),
        fmt.delta_pt(added),
        fmt.metric(teacher),
    ]


def training(record: dict[str, Any]) -> Grid | None:
    """Steps that train (distill, prune, qat): epochs, result (for structured pruning also the
    pruned model's before fine-tuning), and for a distillation with ``compare_scratch`` the same
    student trained without a teacher — what the teacher added."""
    trained = [s for s in steps(record) if s.get("type") in _TRAINED and s.get("artifact")]
    if not trained:
        return None
    key = primary_key(record)
    label = metric_label(key)
    grid = Grid(
        "Training steps",
        [
            "step",
            "what",
            "epochs",
            "best epoch",
            f"{label} before training",
            label,
            f"scratch {label}",
            "teacher added",
            f"baseline {label}",
        ],
        numeric={2, 3, 4, 5, 6, 7, 8},
    )
    teacher = metrics_of(record.get("baseline") or {}).get(key)
    grid.rows += [_training_row(s, key, teacher) for s in trained]
    return grid


def targets(record: dict[str, Any]) -> Grid | None:
    """Each target set for the recommended artifact, or None when the recipe set none."""
    results = record.get("targets") or {}
    if not results:
        return None
    grid = Grid("Targets", ["target", "wanted", "measured", "met"], numeric={1, 2})
    for name, result in results.items():
        result = result if isinstance(result, dict) else {}
        comparator = _COMPARATOR.get(name.split("_", 1)[0], "")
        wanted = fmt.sig(result.get("target"))
        wanted = f"{comparator} {wanted}" if comparator and wanted != fmt.MISSING else wanted
        grid.rows.append([name, wanted, fmt.sig(result.get("value")), fmt.check(result.get("met"))])
    return grid


def recommendation(record: dict[str, Any]) -> tuple[str, str] | None:
    """(headline, why) of the recommendation, or None before one is made."""
    rec = record.get("recommendation")
    if not isinstance(rec, dict):
        return None
    where = f" ({rec['artifact']})" if rec.get("artifact") else ""
    if not record.get("targets"):  # nothing to meet: no verdict, no check mark
        return f"{fmt.text(rec.get('name'))}{where} — no targets set", fmt.text(rec.get("why"))
    verdict = "meets every target" if rec.get("met") else "does not meet every target"
    mark = fmt.check(rec.get("met"))
    return f"{fmt.text(rec.get('name'))}{where} — {verdict} {mark}", fmt.text(rec.get("why"))


def unreliable(record: dict[str, Any]) -> list[str]:
    """One line per measurement taken on a busy machine (spread or load too high), with why."""
    out = []
    for entry in entries(record):
        reasons = (entry.get("latency_ms") or {}).get("unreliable") or []
        if reasons:
            out.append(f"{fmt.text(entry.get('name'))}: {'; '.join(map(str, reasons))}")
    race = record.get("head_to_head") or {}
    if race.get("unreliable"):
        out.append(f"head-to-head: {'; '.join(map(str, race['unreliable']))}")
    return out


def head_to_head(record: dict[str, Any]) -> tuple[str, Grid | None] | None:
    """(what was done, the finalists' times) of the end-of-run head-to-head; None when it did
    not run (fewer than two finalists)."""
    race = record.get("head_to_head")
    if not isinstance(race, dict):
        return None
    if race.get("error"):
        return f"The head-to-head of the finalists failed: {race['error']}.", None
    results = {k: v for k, v in (race.get("results") or {}).items() if isinstance(v, dict)}
    if not results:
        return None
    threads = race.get("threads")
    unit = "thread" if threads == 1 else "threads"
    text = (
        f"The finalists (within {fmt.text(race.get('window', 1.5))}× of the fastest median "
        f"latency, meeting every target but the latency ones) timed in one loop, in turn "
        f"({fmt.text(race.get('order'))}): {fmt.text(race.get('repeats'))} timed calls each "
        f"at batch {fmt.text(race.get('batch'))}, {fmt.text(threads)} {unit}. The recommendation's "
        "fastest is decided here."
    )
    grid = Grid(
        "Head-to-head",
        ["artifact", "median ms", "p90 ms", "vs fastest", "timings"],
        numeric={1, 2, 3},
    )
    best = min(fmt.number(r.get("median")) or float("inf") for r in results.values())
    for name, r in sorted(results.items(), key=lambda kv: fmt.number(kv[1].get("median")) or 0):
        median = fmt.number(r.get("median"))
        grid.rows.append(
            [
                name + (f" {RECOMMENDED_MARK}" if name == race.get("fastest") else ""),
                fmt.ms(median),
                fmt.ms(r.get("p90")),
                fmt.ratio(median / best if median is not None and best > 0 else None),
                f"{UNRELIABLE_MARK} unreliable" if r.get("unreliable") else "ok",
            ]
        )
    return text, grid


def versus_fp32(record: dict[str, Any]) -> tuple[str, Grid] | None:
    """(how they were timed, one row per quantized artifact) of the quantized artifacts timed
    in turn with their runtime's FP32 artifact; None when the run has no quantized artifact."""
    compared = [e for e in entries(record) if isinstance(e.get("vs_fp32"), dict)]
    if not compared:
        return None
    headers = ["artifact", "FP32 sibling", "ms p50 / p90", "FP32 ms p50 / p90", "× FP32 latency"]
    grid = Grid("Quantized vs FP32", [*headers, "verdict", "timings"], numeric={2, 3, 4})
    for entry in compared:
        vs = entry["vs_fp32"]
        ratio = fmt.number(vs.get("ratio"))
        if ratio is None:
            verdict = f"not compared: {fmt.text(vs.get('not_compared'))}"
        elif isinstance(entry.get("slower_than_fp32"), dict):
            verdict = f"{SLOWER_MARK} slower than FP32"
        else:
            verdict = f"{fmt.ratio(1 / ratio if ratio > 0 else None)} faster"
        grid.rows.append(
            [
                fmt.text(entry.get("name")),
                fmt.text(vs.get("sibling")),
                fmt.latency_pair(vs.get("median_ms"), vs.get("p90_ms")),
                fmt.latency_pair(vs.get("sibling_median_ms"), vs.get("sibling_p90_ms")),
                fmt.ratio(ratio),
                verdict,
                f"{UNRELIABLE_MARK} {'; '.join(map(str, vs['unreliable']))}"
                if vs.get("unreliable")
                else ("ok" if ratio is not None else fmt.MISSING),
            ]
        )
    timed = next((e["vs_fp32"] for e in compared if e["vs_fp32"].get("repeats")), {})
    text = (
        "Each quantized artifact timed in one loop with the FP32 artifact of its runtime made "
        "from the same model, in turn"
    )
    if timed:
        unit = "thread" if timed.get("threads") == 1 else "threads"
        text += (
            f" ({fmt.text(timed.get('repeats'))} timed calls each at batch "
            f"{fmt.text(timed.get('batch'))}, "
            f"{fmt.text(timed.get('threads'))} {unit})"
        )
    text += (
        ". × FP32 latency: its median latency over its FP32 sibling's (above 1: slower). One "
        "slower than its FP32 sibling is flagged slower_than_fp32 and never recommended over it "
        "when the sibling is a candidate too."
    )
    return text, grid


def fallback(record: dict[str, Any]) -> Grid | None:
    """INT8 artifacts whose accuracy bound had layers kept FP32 (or checked it): the bound, the
    drop before and after, and which layers stayed FP32."""
    grid = Grid(
        "INT8 accuracy fallback",
        ["artifact", "bound pt", "drop before", "drop after", "met", "kept FP32"],
        numeric={1, 2, 3},
    )
    for entry in entries(record):
        fb = (entry.get("details") or {}).get("fallback")
        if not isinstance(fb, dict):
            continue
        kept = [k for k in fb.get("kept_fp32") or [] if isinstance(k, dict)]
        layers = ", ".join(f"{k.get('node')} ({k.get('op')})" for k in kept)
        if not fb.get("needed"):
            layers = "none needed"
        grid.rows.append(
            [
                fmt.text(entry.get("name")),
                fmt.sig(fb.get("bound_pt")),
                fmt.sig(fb.get("initial_drop_pt")),
                fmt.sig(fb.get("final_drop_pt")),
                fmt.check(fb.get("met")),
                f"{len(kept)} of {fb['layers_ranked']}: {layers}"
                if kept and fb.get("layers_ranked")
                else layers or fmt.MISSING,
            ]
        )
    return grid if grid.rows else None


def _op_counts(counts: Any, limit: int = 4) -> str:
    """{type: n} as "HardSigmoid ×28, ReduceMean ×10", the most frequent ``limit`` first."""
    if not isinstance(counts, dict):
        return fmt.MISSING
    if not counts:
        return "none"
    items = sorted(counts.items(), key=lambda kv: -(fmt.number(kv[1]) or 0))
    text = ", ".join(f"{k} ×{fmt.text(v)}" for k, v in items[:limit])
    return text + (f", +{len(items) - limit} more" if len(items) > limit else "")


def _q_dq(coverage: dict[str, Any]) -> str:
    """Quantize / dequantize ops the runtime runs, then those of the file's graph."""

    def pair(q_dq: dict[str, Any]) -> str:
        return f"{fmt.text(q_dq.get('quantize'))} / {fmt.text(q_dq.get('dequantize'))}"

    text = pair(coverage.get("q_dq") or {})
    model = coverage.get("model_graph") or {}
    if "fake_quantize" in model:
        return text + f" (IR: {fmt.text(model['fake_quantize'])} FakeQuantize)"
    q_dq = model.get("q_dq")
    if isinstance(q_dq, dict):
        return text + f" (file: {pair(q_dq)})"
    return text


def coverage_summary(coverage: dict[str, Any]) -> str:
    """One line: int8 ops of all, MAC and time shares, float op types."""
    if coverage.get("error"):
        return f"not read ({coverage['error']})"
    time = (coverage.get("time_share") or {}).get("int8")
    return (
        f"{fmt.text(coverage.get('ops_int8'))}/{fmt.text(coverage.get('ops_total'))} ops int8, "
        f"MACs {fmt.pct(coverage.get('macs_int8_share'))} int8"
        + (f", time {fmt.pct(time)} int8" if fmt.number(time) is not None else "")
        + f"; float: {_op_counts(coverage.get('float_ops'), 3)}"
    )


def _coverage_notes(coverage: dict[str, Any]) -> str:
    if coverage.get("error"):
        return f"not read: {coverage['error']}"
    delegate = coverage.get("delegate")
    if isinstance(delegate, dict):
        left = _op_counts(delegate.get("not_delegated"))
        return (
            f"{fmt.text(delegate.get('name'))} took {fmt.text(delegate.get('ops_delegated'))} "
            f"ops in {fmt.text(delegate.get('partitions'))} partitions; not delegated: {left}"
        )
    return ""


COVERAGE_HEADERS = [
    "artifact", "runtime", "int8 ops", "MACs in int8", "time in int8", "float ops (by type)",
    "Q / DQ", "notes",
]  # fmt: skip


def coverage(record: dict[str, Any]) -> Grid | None:
    """INT8 artifacts: how much of each runs in int8 as its runtime runs it (int8 ops of the
    ops that compute, share of multiply-accumulates and of profiled time), which ops run in
    float, and the quantize / dequantize ops run (and in the file)."""
    grid = Grid("INT8 coverage", list(COVERAGE_HEADERS), numeric={2, 3, 4})
    for entry in entries(record):
        cov = entry.get("int8_coverage")
        if not isinstance(cov, dict):
            continue
        failed = bool(cov.get("error"))
        grid.rows.append(
            [
                fmt.text(entry.get("name")),
                fmt.text(cov.get("runtime") or entry.get("runtime")),
                fmt.MISSING
                if failed
                else f"{fmt.text(cov.get('ops_int8'))} / {fmt.text(cov.get('ops_total'))}",
                fmt.pct(cov.get("macs_int8_share")),
                fmt.pct((cov.get("time_share") or {}).get("int8")),
                fmt.MISSING if failed else _op_counts(cov.get("float_ops")),
                fmt.MISSING if failed else _q_dq(cov),
                _coverage_notes(cov),
            ]
        )
    return grid if grid.rows else None


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


_AIMS = {
    "fastest": "fastest on this CPU",
    "smallest": "smallest file",
    "closest_accuracy": "closest accuracy",
}


def decisions(record: dict[str, Any]) -> Grid | None:
    """What to ship for each aim (fastest, smallest, most accurate), from the record."""
    found = record.get("decisions") or {}
    if not found:
        return None
    grid = Grid("What to ship", ["aim", "artifact", "why"])
    for key, label in _AIMS.items():
        choice = found.get(key)
        if isinstance(choice, dict):
            grid.rows.append([label, fmt.text(choice.get("artifact")), fmt.text(choice.get("why"))])
    return grid


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
        grid.rows.append([_label(entry, rec), *(_metric_cell(k, values.get(k)) for k in keys)])
    return grid


def _metric_cell(key: str, value: Any) -> str:
    """Scores in [0, 1] to 4 decimals; differences and counts to 3 significant digits."""
    info = METRICS.get(key)
    return fmt.metric(value) if info and info.higher_is_better else fmt.sig(value)


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
    facts += [(metric_label(k), _metric_cell(k, v)) for k, v in scalar_metrics(entry).items()]
    per = metrics_of(entry).get("per_class")
    if isinstance(per, dict) and per:
        compact = "  ".join(f"{c}:{fmt.pct(v, 0)}" for c, v in per.items())
        facts.append(("per-class accuracy", compact))
    for key in ("speedup", "size_ratio"):
        if fmt.number(entry.get(key)) is not None:
            facts.append((key.replace("_", " "), fmt.ratio(entry.get(key))))
    if fmt.number(entry.get("metric_delta_pt")) is not None:
        key = _task_primary(task)
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
                fmt.mb(_megabytes(entry.get("size_bytes"))),
                _metric_cell("map50_95", m.get("map50_95")),
                _metric_cell("map50", m.get("map50")),
                _metric_cell("precision", m.get("precision")),
                _metric_cell("recall", m.get("recall")),
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


def _megabytes(size_bytes: Any) -> float | None:
    value = fmt.finite(size_bytes)
    return None if value is None else value / 1e6
