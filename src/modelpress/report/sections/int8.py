"""INT8 artifacts: layers an accuracy bound kept in FP32 (``fallback``) and how much of each
runs in int8 as its runtime runs it (``coverage``)."""

from __future__ import annotations

from typing import Any

from modelpress.report import format as fmt
from modelpress.report.sections.base import Grid, entries


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
    if coverage.get("skipped"):  # evaluate.int8_coverage: false
        return str(coverage["skipped"])
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
