"""Each quantized artifact against its runtime's FP32 artifact, timed in one loop.

INT8 is meant to be faster than the FP32 model it was made from, in the same runtime; on some
graphs (hardswish, squeeze-excite, depthwise convolutions) it is slower, and two benchmarks taken
minutes apart need not show it. So at the end of a run every quantized artifact is timed
head-to-head with its *FP32 sibling*: its ``vs_fp32`` holds the ratio of the two medians
(quantized / FP32; above 1: slower), both medians and p90s, their spreads and why the timing may
not be trusted. One slower than its sibling is also flagged ``slower_than_fp32`` (the same facts;
null otherwise), and the recommendation never picks it over its sibling (``set_aside``).

The sibling is the fp32 artifact of the same format made from the same model: the quantized
artifact's own fp32 ancestor in that format (onnx-fp32 → onnx-int8), else the one made from the
same fp32 torch model (tflite-fp32 and tflite-int8 both exported from the baseline); for a
quantized torch graph (.pt2), the fp32 torch model it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.errors import first_line
from modelpress.evaluate.benchmark import head_to_head
from modelpress.runtimes import runtime_for

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact
    from modelpress.runtimes.base import Runtime

Entry = dict[str, Any]

QUANTIZED = ("int8", "int8-dynamic")  # the precisions compared with their FP32 sibling


def _lineage(entry: Entry, by_name: dict[str, Entry]) -> list[Entry]:
    """``entry``'s ancestors in the run, nearest first."""
    out: list[Entry] = []
    seen = {entry.get("name")}
    parent = entry.get("parent")
    while isinstance(parent, str) and parent in by_name and parent not in seen:
        seen.add(parent)
        out.append(by_name[parent])
        parent = by_name[parent].get("parent")
    return out


def _is_fp32(entry: Entry, format: Any) -> bool:
    return entry.get("format") == format and entry.get("precision") == "fp32"


def _origin(entry: Entry, by_name: dict[str, Entry]) -> Any:
    """The model whose weights ``entry`` holds: its nearest fp32 torch ancestor (itself
    included), else the first of its lineage (a run that starts from an .onnx file)."""
    chain = [entry, *_lineage(entry, by_name)]
    return next((e for e in chain if _is_fp32(e, "torch")), chain[-1]).get("name")


def sibling(entry: Entry, entries: list[Entry]) -> str | None:
    """The name of ``entry``'s FP32 sibling among ``entries`` (in pipeline order), or None."""
    if entry.get("precision") not in QUANTIZED:
        return None
    by_name = {e.get("name"): e for e in entries}
    fmt = entry.get("format")
    for ancestor in _lineage(entry, by_name):
        if _is_fp32(ancestor, fmt):
            return ancestor["name"]
    if fmt == "torch":
        return None  # a torch graph's sibling is its fp32 torch ancestor, found above
    origin = _origin(entry, by_name)
    same = [e for e in entries if _is_fp32(e, fmt) and _origin(e, by_name) == origin]
    before = [e for e in same if entries.index(e) < entries.index(entry)]
    found = before[-1] if before else (same[0] if same else None)  # the newest made before it
    return found["name"] if found else None


def pairs(entries: list[Entry]) -> list[tuple[str, str | None]]:
    """(quantized artifact, its FP32 sibling or None) for every quantized entry."""
    return [(e["name"], sibling(e, entries)) for e in entries if e.get("precision") in QUANTIZED]


def _batch(a: Entry, b: Entry, batch: int) -> int | None:
    """The batch both can run: ``batch``, or the fixed batch of either; None when they differ."""
    fixed = {e.get("fixed_batch") for e in (a, b)} - {None}
    if not fixed:
        return batch
    return fixed.pop() if len(fixed) == 1 else None


def _compared(q: dict[str, Any], s: dict[str, Any], sib: str, race: dict[str, Any]) -> Entry:
    """The record of one pair from their head-to-head stats (``q`` quantized, ``s`` FP32)."""
    return {
        "sibling": sib,
        "ratio": q["median"] / s["median"] if s["median"] > 0 else None,
        "median_ms": q["median"],
        "p90_ms": q["p90"],
        "sibling_median_ms": s["median"],
        "sibling_p90_ms": s["p90"],
        "spread": q["p90"] / q["median"] if q["median"] > 0 else None,
        "sibling_spread": s["p90"] / s["median"] if s["median"] > 0 else None,
        "unreliable": list(dict.fromkeys([*q["unreliable"], *s["unreliable"]])),
        "batch": race["batch"],
        "repeats": race["repeats"],
        "threads": race["threads"],
    }


def not_compared(sib: str | None, why: str) -> Entry:
    return {"sibling": sib, "ratio": None, "not_compared": why}


def time_pairs(
    entries: list[Entry],
    live: dict[str, Artifact],
    threads: int,
    sample_batch: Callable[[int], list[np.ndarray]],
    *,
    batch: int,
    warmup: int,
    repeats: int,
) -> dict[str, Entry]:
    """{quantized artifact: its ``vs_fp32``} for every quantized entry. Every pair that runs
    at one batch is timed in ONE ``head_to_head`` loop (normally all of them): a sibling shared
    by int8 and int8-dynamic runs once, and every ratio comes from the same machine state."""
    by_name = {e.get("name"): e for e in entries}
    out: dict[str, Entry] = {}
    groups: dict[int, list[tuple[str, str]]] = {}
    for name, sib in pairs(entries):
        entry = by_name[name]
        if sib is None:
            why = f"no {entry.get('format')} fp32 artifact made from the same model in this run"
            out[name] = not_compared(None, why)
        elif name not in live or sib not in live:
            out[name] = not_compared(sib, "its files could not be loaded again")
        elif (b := _batch(entry, by_name[sib], batch)) is None:
            out[name] = not_compared(sib, "the two run at different fixed batch sizes")
        else:
            groups.setdefault(b, []).append((name, sib))
    runtimes: dict[str, Runtime] = {}
    failed: dict[str, str] = {}
    try:
        for b, group in groups.items():
            for name in dict.fromkeys(n for pair in group for n in pair):
                if name not in runtimes and name not in failed:
                    try:
                        runtimes[name] = runtime_for(live[name], threads)
                    except Exception as e:  # its own benchmark stands; this pair is not compared
                        failed[name] = f"{name} did not load: {first_line(e)}"
            ready = [(n, s) for n, s in group if n in runtimes and s in runtimes]
            for name, sib in group:
                if (name, sib) not in ready:
                    out[name] = not_compared(sib, failed.get(name) or failed[sib])
            if not ready:
                continue
            names = list(dict.fromkeys(n for pair in ready for n in pair))
            try:
                race = head_to_head(
                    {n: runtimes[n] for n in names},
                    sample_batch,
                    batch=b,
                    warmup=warmup,
                    repeats=repeats,
                )
            except Exception as e:  # the separate benchmarks still stand
                for name, sib in ready:
                    out[name] = not_compared(sib, f"timing failed: {first_line(e)}")
                continue
            for name, sib in ready:
                results = race["results"]
                out[name] = _compared(results[name], results[sib], sib, race)
    finally:
        for runtime in reversed(list(runtimes.values())):  # torch's threads: last in, first out
            runtime.close()
    return out


def annotate(entries: list[Entry], results: dict[str, Entry]) -> list[Entry]:
    """Write ``vs_fp32`` and ``slower_than_fp32`` into every quantized entry; return the ones
    flagged slower than their FP32 sibling."""
    flagged = []
    for entry in entries:
        if entry.get("precision") not in QUANTIZED:
            continue
        found = results.get(entry["name"])
        ratio = (found or {}).get("ratio")
        slower = isinstance(ratio, int | float) and ratio > 1.0
        entry["vs_fp32"] = found
        entry["slower_than_fp32"] = found if slower else None
        if slower:
            flagged.append(entry)
    return flagged


def flag(entry: Entry) -> Entry | None:
    """``entry``'s slower_than_fp32 facts, or None when it is not flagged."""
    found = entry.get("slower_than_fp32")
    return found if isinstance(found, dict) and found.get("sibling") else None


def set_aside(entries: list[Entry]) -> list[Entry]:
    """The entries a choice among ``entries`` leaves out: each flagged slower than its FP32
    sibling while that sibling is among them too."""
    names = {e.get("name") for e in entries}
    return [e for e in entries if (f := flag(e)) is not None and f["sibling"] in names]


def describe(entry: Entry) -> str:
    """One line on a flagged entry: how much slower, than which, how it was timed."""
    f = flag(entry) or {}
    text = (
        f"{entry.get('name')} is slower than its FP32 sibling {f.get('sibling')}: "
        f"{f.get('ratio', 0):.2f}× its latency ({f.get('median_ms', 0):.3g} vs "
        f"{f.get('sibling_median_ms', 0):.3g} ms median, timed in turn, {f.get('repeats')} "
        f"timed calls each at batch {f.get('batch')})"
    )
    if f.get("unreliable"):
        text += f" — unreliable: {'; '.join(map(str, f['unreliable']))}"
    return text
