"""The Pareto front of measured candidates: accuracy lost, latency and size, all minimised."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

OBJECTIVES = ("loss_pt", "latency_ms", "size_mb")


def point(entry: dict[str, Any]) -> dict[str, float] | None:
    """A record entry's objectives (None when one was not measured)."""
    from modelpress.evaluate.targets import loss_pt

    lost = loss_pt(entry)
    latency = (entry.get("latency_ms") or {}).get("median")
    size = entry.get("size_bytes")
    if lost is None or latency is None or size is None:
        return None
    return {"loss_pt": float(lost), "latency_ms": float(latency), "size_mb": size / 1e6}


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is no worse than ``b`` on every objective and better on one (all minimised)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def pareto(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates (equal points all stay), in input order."""
    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p) for j, q in enumerate(points) if j != i)
    ]


def shortfall(results: dict[str, dict[str, Any]]) -> tuple[int, float]:
    """(targets missed, their relative shortfalls summed): the least-violating sort first."""
    missed, total = 0, 0.0
    for r in results.values():
        if r["met"]:
            continue
        missed += 1
        if r["value"] is None:
            total += float("inf")
        else:
            total += abs(r["value"] - r["target"]) / max(abs(r["target"]), 1e-9)
    return missed, total


def misses(results: dict[str, dict[str, Any]]) -> list[str]:
    """What a candidate misses, in words: "max_size_mb 6.1 vs 5 (+22 %)"; against a bound of 0,
    by how much: "max_accuracy_drop 0.52 vs 0 (over by 0.52)"."""
    out = []
    for name, r in results.items():
        if r["met"]:
            continue
        if r["value"] is None:
            out.append(f"{name} not measured")
            continue
        if r["target"] == 0:  # a share of 0 means nothing: by how much, in the target's unit
            word = "short" if name.startswith("min") else "over"
            out.append(f"{name} {r['value']:.3g} vs 0 ({word} by {abs(r['value']):.3g})")
            continue
        rel = (r["value"] - r["target"]) / abs(r["target"])
        out.append(f"{name} {r['value']:.3g} vs {r['target']:.3g} ({100 * rel:+.0f} %)")
    return out
