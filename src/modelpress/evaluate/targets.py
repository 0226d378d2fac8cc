"""Targets met or missed, and the recommendation, from measured numbers only."""

from __future__ import annotations

from typing import Any

from modelpress.evaluate.metrics import higher_is_better, worse_by
from modelpress.evaluate.versus_fp32 import flag, set_aside

# Without a max_accuracy_drop target, a recommendation still refuses artifacts that lose more.
DEFAULT_MAX_DROP_PT = 1.0
# Targets judged on latency; the head-to-head decides among artifacts meeting the others.
LATENCY_TARGETS = ("min_speedup", "max_latency_ms")
# Artifacts whose median latency is within this factor of the fastest race head-to-head.
FINALIST_WINDOW = 1.5


def candidate(entry: dict[str, Any]) -> bool:
    """Whether ``entry`` may be recommended or named best for anything: measured ``ok`` (the
    baseline too: a baseline at chance or with non-finite outputs is ``collapsed``). A
    ``degraded``, ``collapsed``, ``failed`` or ``coarse`` one never is."""
    return entry.get("status", "ok") == "ok"


def _candidates(baseline: dict[str, Any], artifacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in [baseline, *artifacts] if candidate(c)]


def annotate(entry: dict[str, Any], baseline: dict[str, Any], primary: str) -> None:
    """Add speedup, size ratio and ``primary``-metric Δ (percentage points, value − baseline's)
    vs the baseline (``primary``: the task's primary metric, e.g. ``top1``)."""
    key = primary
    b_lat, lat = baseline["latency_ms"]["median"], entry["latency_ms"]["median"]
    same_batch = baseline["latency_ms"]["batch"] == entry["latency_ms"]["batch"]
    entry["speedup"] = b_lat / lat if lat > 0 and same_batch else None
    entry["size_ratio"] = (
        entry["size_bytes"] / baseline["size_bytes"] if baseline["size_bytes"] else None
    )
    value, ref = entry["metrics"].get(key), baseline["metrics"].get(key)
    entry["primary_metric"] = key
    entry["metric_delta_pt"] = None if value is None or ref is None else 100.0 * (value - ref)


def loss_pt(entry: dict[str, Any]) -> float | None:
    """How many points of its primary metric ``entry`` lost against the baseline (negative: it
    gained), whichever way that metric points; None when not measured."""
    d = entry.get("metric_delta_pt")
    if d is None:
        return None
    return worse_by(entry.get("primary_metric") or "", d, 0.0)


def _best_word(entry: dict[str, Any]) -> str:
    """Which end of ``entry``'s primary metric is best: "highest" or "lowest"."""
    return "highest" if higher_is_better(entry.get("primary_metric") or "") else "lowest"


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
        lost = loss_pt(entry)
        drop = None if lost is None else max(0.0, lost)
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


def _guard(targets: dict[str, float | None]) -> tuple[dict[str, float | None], bool]:
    """The targets a recommendation applies (the implicit accuracy bound filled in), and
    whether that bound is implicit."""
    guard = dict(targets)
    implicit = guard.get("max_accuracy_drop") is None
    if implicit:
        guard["max_accuracy_drop"] = DEFAULT_MAX_DROP_PT
    return guard, implicit


def finalists(
    baseline: dict[str, Any], artifacts: list[dict[str, Any]], targets: dict[str, float | None]
) -> list[dict[str, Any]]:
    """The candidates a recommendation could pick on speed: meeting every target but the
    latency ones, measured at the baseline's latency batch, with a median latency within
    FINALIST_WINDOW of the fastest of them, none slower than an FP32 sibling among them
    (``versus_fp32.set_aside``). Their head-to-head decides which is fastest."""
    guard, _ = _guard(targets)
    others = {k: v for k, v in guard.items() if k not in LATENCY_TARGETS}
    batch = baseline["latency_ms"]["batch"]
    eligible = [
        c
        for c in _candidates(baseline, artifacts)
        if c["latency_ms"]["batch"] == batch and all(r["met"] for r in check(c, others).values())
    ]
    aside = set_aside(eligible)
    eligible = [c for c in eligible if not any(c is a for a in aside)]
    if not eligible:
        return []
    fastest = min(c["latency_ms"]["median"] for c in eligible)
    return [c for c in eligible if c["latency_ms"]["median"] <= FINALIST_WINDOW * fastest]


def _fastest(entries: list[dict[str, Any]], race: dict[str, Any] | None) -> dict[str, Any]:
    """The fastest of ``entries`` (ties: the smaller), leaving out any slower than its FP32
    sibling when that sibling is among them. When the fastest by separate benchmarks raced
    head-to-head, the race decides among the entries that ran in it."""
    aside = set_aside(entries)
    entries = [c for c in entries if not any(c is a for a in aside)]  # a sibling always stays
    first = min(entries, key=lambda c: (c["latency_ms"]["median"], c["size_bytes"]))
    timed = (race or {}).get("results") or {}
    raced = [c for c in entries if c["name"] in timed]
    if first["name"] not in timed or len(raced) < 2:
        return first
    return min(raced, key=lambda c: (timed[c["name"]]["median"], c["size_bytes"]))


def _race_says(entry: dict[str, Any], race: dict[str, Any] | None) -> str:
    """What the head-to-head showed about ``entry``, or "" when it did not race."""
    timed = (race or {}).get("results") or {}
    if entry["name"] not in timed or len(timed) < 2:
        return ""
    mine = timed[entry["name"]]
    others = ", ".join(
        f"{name} {r['median']:.3g} ms" for name, r in timed.items() if name != entry["name"]
    )
    text = (
        f"; timed head-to-head with the other finalists (in turn, {race['repeats']} timed "
        f"calls each at batch {race['batch']}): {mine['median']:.3g} ms median, "
        f"p90 {mine['p90']:.3g} ms (vs {others})"
    )
    if race.get("unreliable"):
        text += f" — unreliable: {'; '.join(race['unreliable'])}"
    return text


def _set_aside_says(entries: list[dict[str, Any]]) -> str:
    """Which of ``entries`` the choice left out as slower than their FP32 sibling, or ""."""
    aside = set_aside(entries)
    if not aside:
        return ""
    said = ", ".join(
        f"{e['name']} ({f['ratio']:.2f}× the latency of {f['sibling']})"
        for e in aside
        if (f := flag(e)) is not None
    )
    return f"; set aside as slower than their FP32 sibling, timed in turn: {said}"


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
    slower = flag(entry)
    if slower is not None:  # chosen anyway (its sibling is not a candidate): never silently
        parts.append(
            f"⚠ slower than its FP32 sibling {slower['sibling']} ({slower['ratio']:.2f}× its "
            "latency, timed in turn)"
        )
    return ", ".join(parts)


def recommend(
    baseline: dict[str, Any],
    artifacts: list[dict[str, Any]],
    targets: dict[str, float | None],
    race: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(recommendation, its target results). The fastest candidate meeting every target wins
    (ties: the smaller), judged by the ``race`` (``head_to_head`` of the finalists) where
    there is one; with no accuracy target, a drop over DEFAULT_MAX_DROP_PT disqualifies."""
    guard, implicit = _guard(targets)
    candidates = _candidates(baseline, artifacts)
    if not candidates:  # the baseline itself collapsed, and nothing made from it is ok
        return _nothing(baseline, artifacts), check(baseline, targets)
    results = {id(c): check(c, guard) for c in candidates}
    meeting = [c for c in candidates if all(r["met"] for r in results[id(c)].values())]
    set_targets = {k: v for k, v in results.items()}
    if meeting:
        best = _fastest(meeting, race)
        res = check(best, targets)
        n = len(res)
        loses = f"loses ≤ {DEFAULT_MAX_DROP_PT} pt of accuracy"
        if n == 0:
            why = f"fastest artifact that {loses} (no targets set)"
        else:
            meets = "the one target" if n == 1 else f"all {n} targets"
            why = f"fastest artifact that meets {meets}"
            if implicit:
                why += f" and {loses} (no accuracy target given)"
        rec = {
            "artifact": best.get("path"),
            "name": best["name"],
            "met": True,
            "why": f"{why}: {_describe(best)}{_race_says(best, race)}{_set_aside_says(meeting)}",
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


def _nothing(baseline: dict[str, Any], artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    """The recommendation when no artifact may be recommended: none, and why."""
    said = "; ".join(
        f"{e.get('name')}: {e.get('status')}" for e in [baseline, *artifacts] if e.get("name")
    )
    why = next((n for n in baseline.get("notes") or [] if str(n).startswith("collapsed")), "")
    return {
        "artifact": None,
        "name": None,
        "met": False,
        "why": f"nothing to recommend: no artifact measured ok ({said})"
        + (f"; the baseline {why}" if why else ""),
    }


def decisions(
    baseline: dict[str, Any],
    artifacts: list[dict[str, Any]],
    targets: dict[str, float | None],
    race: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """What to ship for each aim, from measured numbers: the fastest artifact within the
    accuracy bound (by the finalists' ``race`` where they ran one), the smallest within it, and
    the closest in accuracy to the baseline."""
    bound = targets.get("max_accuracy_drop")
    bound = DEFAULT_MAX_DROP_PT if bound is None else bound
    ok = [a for a in artifacts if candidate(a)]
    within = [a for a in ok if (lost := loss_pt(a)) is not None and lost <= bound]
    out: dict[str, dict[str, Any]] = {}
    if within:
        fastest = _fastest(within, race)
        # one slower than its FP32 sibling is never best for anything, size included
        aside = set_aside(within)
        small = [a for a in within if not any(a is b for b in aside)]
        smallest = min(small, key=lambda a: (a["size_bytes"], a["latency_ms"]["median"]))
        out["fastest"] = {
            "artifact": fastest["name"],
            "why": f"lowest latency within {bound} pt: {_describe(fastest)}"
            f"{_race_says(fastest, race)}{_set_aside_says(within)}",
        }
        out["smallest"] = {
            "artifact": smallest["name"],
            "why": f"smallest file within {bound} pt: {_describe(smallest)}",
        }
    scored = [a for a in ok if loss_pt(a) is not None]
    if scored:
        closest = min(scored, key=lambda a: (loss_pt(a), a["latency_ms"]["median"]))
        out["closest_accuracy"] = {
            "artifact": closest["name"],
            "why": f"{_best_word(closest)} {closest.get('primary_metric')}: {_describe(closest)}",
        }
    return out
