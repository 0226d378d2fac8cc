"""Targets met or missed, and the recommendation, from measured numbers only."""

from __future__ import annotations

from typing import Any

from modelpress.evaluate.metrics import PRIMARY

# Without a max_accuracy_drop target, a recommendation still refuses artifacts that lose more.
DEFAULT_MAX_DROP_PT = 1.0


def annotate(entry: dict[str, Any], baseline: dict[str, Any], task: str) -> None:
    """Add speedup, size ratio and primary-metric Δ (percentage points) vs the baseline."""
    key = PRIMARY[task]
    b_lat, lat = baseline["latency_ms"]["median"], entry["latency_ms"]["median"]
    same_batch = baseline["latency_ms"]["batch"] == entry["latency_ms"]["batch"]
    entry["speedup"] = b_lat / lat if lat > 0 and same_batch else None
    entry["size_ratio"] = (
        entry["size_bytes"] / baseline["size_bytes"] if baseline["size_bytes"] else None
    )
    value, ref = entry["metrics"].get(key), baseline["metrics"].get(key)
    entry["primary_metric"] = key
    entry["metric_delta_pt"] = None if value is None or ref is None else 100.0 * (value - ref)


def check(entry: dict[str, Any], targets: dict[str, float | None]) -> dict[str, dict[str, Any]]:
    """{target: {target, value, met}} for every target the recipe sets."""
    out: dict[str, dict[str, Any]] = {}

    def put(name: str, value: float | None, ok: bool | None) -> None:
        out[name] = {
            "target": targets[name],
            "value": value,
            "met": bool(ok) if value is not None else False,
        }

    if targets.get("max_size_mb") is not None:
        mb = entry["size_bytes"] / 1e6
        put("max_size_mb", mb, mb <= targets["max_size_mb"])
    if targets.get("min_speedup") is not None:
        s = entry.get("speedup")
        put("min_speedup", s, s is not None and s >= targets["min_speedup"])
    if targets.get("max_accuracy_drop") is not None:
        d = entry.get("metric_delta_pt")
        drop = None if d is None else max(0.0, -d)
        put("max_accuracy_drop", drop, drop is not None and drop <= targets["max_accuracy_drop"])
    if targets.get("max_latency_ms") is not None:
        lat = entry["latency_ms"]["median"]
        put("max_latency_ms", lat, lat <= targets["max_latency_ms"])
    return out


def _shortfall(result: dict[str, Any]) -> float:
    """How far a missed target is off, relative to the target (0 when met)."""
    if result["met"] or result["value"] is None:
        return 0.0 if result["met"] else float("inf")
    t, v = result["target"], result["value"]
    return abs(v - t) / max(abs(t), 1e-9)


def _describe(entry: dict[str, Any]) -> str:
    parts = [
        f"{entry['latency_ms']['median']:.3g} ms median at batch {entry['latency_ms']['batch']}"
    ]
    if entry.get("speedup"):
        parts.append(f"{entry['speedup']:.2f}× the baseline's speed")
    parts.append(f"{entry['size_bytes'] / 1e6:.3g} MB")
    key, d = entry.get("primary_metric"), entry.get("metric_delta_pt")
    if key and key in entry["metrics"]:
        parts.append(
            f"{key} {entry['metrics'][key]:.4f}" + (f" ({d:+.2f} pt)" if d is not None else "")
        )
    return ", ".join(parts)


def recommend(
    baseline: dict[str, Any], artifacts: list[dict[str, Any]], targets: dict[str, float | None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(recommendation, its target results). The fastest candidate meeting every target wins
    (ties: the smaller); with no accuracy target, a drop over DEFAULT_MAX_DROP_PT disqualifies."""
    guard = dict(targets)
    implicit = guard.get("max_accuracy_drop") is None
    if implicit:
        guard["max_accuracy_drop"] = DEFAULT_MAX_DROP_PT
    candidates = [baseline] + [a for a in artifacts if a.get("status") == "ok"]
    results = {id(c): check(c, guard) for c in candidates}
    meeting = [c for c in candidates if all(r["met"] for r in results[id(c)].values())]
    set_targets = {k: v for k, v in results.items()}
    if meeting:
        best = min(meeting, key=lambda c: (c["latency_ms"]["median"], c["size_bytes"]))
        res = check(best, targets)
        n = len(res)
        meets = {0: "no set targets", 1: "the one target"}.get(n, f"all {n} targets")
        why = f"fastest artifact that meets {meets}"
        if implicit:
            why += f" and loses ≤ {DEFAULT_MAX_DROP_PT} pt of accuracy (no accuracy target given)"
        rec = {
            "artifact": best.get("path"),
            "name": best["name"],
            "met": True,
            "why": f"{why}: {_describe(best)}",
        }
        return rec, res
    closest = min(
        candidates,
        key=lambda c: (
            sum(not r["met"] for r in set_targets[id(c)].values()),
            sum(_shortfall(r) for r in set_targets[id(c)].values()),
            c["latency_ms"]["median"],
        ),
    )
    res = check(closest, guard if implicit else targets)
    misses = [
        f"{k} {r['value']:.3g} vs {r['target']:.3g}"
        if r["value"] is not None
        else f"{k} not measured"
        for k, r in res.items()
        if not r["met"]
    ]
    rec = {
        "artifact": closest.get("path"),
        "name": closest["name"],
        "met": False,
        "why": f"no artifact meets every target; closest is {closest['name']}, which misses "
        f"{'; '.join(misses)} ({_describe(closest)})",
    }
    return rec, check(closest, targets)


def decisions(
    baseline: dict[str, Any], artifacts: list[dict[str, Any]], targets: dict[str, float | None]
) -> dict[str, dict[str, Any]]:
    """What to ship for each aim, from measured numbers: the fastest artifact within the
    accuracy bound, the smallest within it, and the closest in accuracy to the baseline."""
    bound = targets.get("max_accuracy_drop")
    bound = DEFAULT_MAX_DROP_PT if bound is None else bound
    ok = [a for a in artifacts if a.get("status") == "ok"]
    within = [
        a for a in ok if (a.get("metric_delta_pt") is not None and -a["metric_delta_pt"] <= bound)
    ]
    out: dict[str, dict[str, Any]] = {}
    if within:
        fastest = min(within, key=lambda a: (a["latency_ms"]["median"], a["size_bytes"]))
        smallest = min(within, key=lambda a: (a["size_bytes"], a["latency_ms"]["median"]))
        out["fastest"] = {
            "artifact": fastest["name"],
            "why": f"lowest latency within {bound} pt: {_describe(fastest)}",
        }
        out["smallest"] = {
            "artifact": smallest["name"],
            "why": f"smallest file within {bound} pt: {_describe(smallest)}",
        }
    scored = [a for a in ok if a.get("metric_delta_pt") is not None]
    if scored:
        closest = max(scored, key=lambda a: (a["metric_delta_pt"], -a["latency_ms"]["median"]))
        out["closest_accuracy"] = {
            "artifact": closest["name"],
            "why": f"highest {closest.get('primary_metric')}: {_describe(closest)}",
        }
    return out
