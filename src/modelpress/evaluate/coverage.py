"""INT8 coverage: how much of a quantized artifact really runs in int8, as its runtime runs it.

For an int8 artifact the runtime names the ops it executes (ORT's optimized graph and profiler,
LiteRT's interpreter with its delegate, OpenVINO's compiled graph and performance counters) and
the graph its file holds. This tallies both for the record:

    int8_coverage: {runtime, source, ops_total, ops_int8, ops_float, int8_ops: {type: n},
                    float_ops: {type: n}, other_ops: {type: n}, q_dq: {quantize, dequantize},
                    macs_int8, macs_float, macs_int8_share, time_share: {kind: share} | None,
                    model_graph: {the same for the file's graph}, …runtime facts (delegate)}

``ops_total`` counts the ops that compute (``ops_int8 + ops_float``); quantize / dequantize ops
and ``other`` ops (data movement, layout reorders, shape bookkeeping) are counted apart.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.errors import first_line

if TYPE_CHECKING:
    from modelpress.runtimes.base import GraphView, Runtime

INT8_PRECISIONS = ("int8", "int8-dynamic")
OFF = "not measured (evaluate.int8_coverage off)"
_KINDS = ("int8", "float", "quantize", "dequantize", "other")


def _counts(view: GraphView, kind: str) -> dict[str, int]:
    """{op type: count} of one kind, most frequent first."""
    return dict(Counter(op.type for op in view.ops if op.kind == kind).most_common())


def tally(view: GraphView) -> dict[str, Any]:
    """One graph's coverage: op counts by kind and type, Q/DQ ops, MACs and time by kind."""
    kinds = Counter(op.kind for op in view.ops)
    macs = (view.macs_int8 or 0) + (view.macs_float or 0)
    out: dict[str, Any] = {
        "source": view.source,
        "ops_total": kinds["int8"] + kinds["float"],
        "ops_int8": kinds["int8"],
        "ops_float": kinds["float"],
        "int8_ops": _counts(view, "int8"),
        "float_ops": _counts(view, "float"),
        "other_ops": _counts(view, "other"),
        "q_dq": {"quantize": kinds["quantize"], "dequantize": kinds["dequantize"]},
        "macs_int8": view.macs_int8,
        "macs_float": view.macs_float,
        "macs_int8_share": round(view.macs_int8 / macs, 4)
        if view.macs_int8 is not None and macs > 0
        else None,
        "time_share": None,
    }
    timed = [op for op in view.ops if op.ms is not None]
    total_ms = sum(op.ms or 0.0 for op in timed)
    if timed and total_ms > 0:
        out["time_share"] = {
            k: round(sum(op.ms or 0.0 for op in timed if op.kind == k) / total_ms, 4)
            for k in _KINDS
        }
    return out | view.facts


def int8_coverage(
    runtime: Runtime, inputs: list[np.ndarray], measure: bool = True
) -> dict[str, Any] | None:
    """The record's ``int8_coverage`` of the artifact ``runtime`` has loaded, run on ``inputs``
    (one batch, for the profilers); None for a float artifact or a runtime that cannot say.
    A runtime that fails to say records why rather than failing the measurement; ``measure``
    False (``evaluate.int8_coverage: false``) records that it was not measured."""
    if runtime.artifact.precision not in INT8_PRECISIONS:
        return None
    if not measure:
        return {"runtime": runtime.name, "skipped": OFF}
    try:
        views = runtime.int8_graphs(inputs)
    except Exception as e:  # coverage is a view of the artifact: its own numbers stand
        return {"runtime": runtime.name, "error": first_line(e)}
    if not views or "runtime" not in views:
        return None
    out = {"runtime": runtime.name, **tally(views["runtime"])}
    if "model" in views:
        out["model_graph"] = tally(views["model"])
    return out
