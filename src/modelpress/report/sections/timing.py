"""How far the timings can be trusted and how they compare: busy-machine warnings, the
finalists' head-to-head, and each quantized artifact against its FP32 sibling."""

from __future__ import annotations

from typing import Any

from modelpress.report import format as fmt
from modelpress.report.sections.base import (
    RECOMMENDED_MARK,
    SLOWER_MARK,
    UNRELIABLE_MARK,
    Grid,
    entries,
)


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
