"""The "Techniques compared" table: each technique applied alone to the baseline, measured in
its own runtime, with the best for size, speed and accuracy named. Read from the record only."""

from __future__ import annotations

from typing import Any

from modelpress.evaluate.metrics import METRICS

BEST_FOR = ("size", "speed", "accuracy")


def _row(node: str, step: dict[str, Any] | None, key: str) -> dict[str, Any]:
    art = (step or {}).get("artifact") or {}
    config = (step or {}).get("config") or {}
    latency = art.get("latency_ms") or {}
    row: dict[str, Any] = {
        "technique": node,
        "step": config.get("type"),
        "artifact": art.get("name"),
        "format": art.get("format", config.get("format")),
        "precision": art.get("precision", config.get("precision")),
        "status": (step or {}).get("status", "missing"),
        "error": (step or {}).get("error") if step else f"no step has the id '{node}'",
        "size_bytes": art.get("size_bytes"),
        "latency_ms": latency.get("median"),
        "latency_p90_ms": latency.get("p90"),
        "throughput_per_s": art.get("throughput_per_s"),
        "peak_memory_mb": art.get("peak_memory_mb"),
        # the artifact loaded alone with its runtime, as a device would hold it
        "peak_memory_own_process_mb": (art.get("peak_memory_own_process") or {}).get("mb"),
        "metrics": {
            k: v for k, v in (art.get("metrics") or {}).items() if isinstance(v, int | float)
        },
        "primary_metric": key,
        "metric_delta_pt": art.get("metric_delta_pt"),
        "speedup": art.get("speedup"),
        "size_ratio": art.get("size_ratio"),
        "best_for": [],
    }
    if art.get("slower_than_fp32"):
        row["slower_than_fp32"] = art["slower_than_fp32"]
    return row


def _best(rows: list[dict[str, Any]], value: Any, higher: bool) -> list[dict[str, Any]]:
    scored = [(value(r), r) for r in rows if value(r) is not None]
    if not scored:
        return []
    top = max(v for v, _ in scored) if higher else min(v for v, _ in scored)
    return [r for v, r in scored if v == top]


def table(record: dict[str, Any], nodes: list[str]) -> list[dict[str, Any]]:
    """One row per compared node (its step's artifact, or its failure and why), in the order
    given; ``best_for`` marks the smallest, the fastest (median latency at the latency batch)
    and the most accurate (the task's primary metric, in its direction) of the rows measured
    ``ok`` and not slower than their FP32 sibling."""
    key = record.get("primary_metric") or "top1"
    by_id = {s.get("id"): s for s in record.get("steps") or [] if isinstance(s, dict)}
    rows = [_row(node, by_id.get(node), key) for node in nodes]
    # degraded, collapsed and slower-than-FP32 rows are shown, never best for anything
    measured = [
        r for r in rows if r["status"] == "ok" and r["artifact"] and not r.get("slower_than_fp32")
    ]
    higher = METRICS[key].higher_is_better if key in METRICS else True
    choices = {
        "size": (lambda r: r["size_bytes"], False),
        "speed": (lambda r: r["latency_ms"], False),
        "accuracy": (lambda r: r["metrics"].get(key), higher),
    }
    for what, (value, hi) in choices.items():
        for row in _best(measured, value, hi):
            row["best_for"].append(what)
    return rows
