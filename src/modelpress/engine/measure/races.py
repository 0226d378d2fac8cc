"""The races at the end of a run, under the run's timing guard: each quantized artifact timed
in one loop with its runtime's FP32 sibling (flagged when slower, ``evaluate/versus_fp32``),
then the recommendation's finalists timed side by side (``head_to_head``): the separate
benchmarks were minutes apart, on a machine whose load may have changed. Each records its
``timed_between``; ``evaluate.races: false`` records "not measured" instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.engine.measure.benchmark import head_to_head
from modelpress.errors import first_line
from modelpress.evaluate import targets, versus_fp32
from modelpress.runtimes import runtime_for

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact
    from modelpress.engine.context import Context
    from modelpress.runtimes.base import Runtime

Entry = dict[str, Any]

OFF = "not measured (evaluate.races off)"


def time_against_fp32(record: dict[str, Any], ctx: Context, live: dict[str, Artifact]) -> None:
    """Write ``vs_fp32`` (and the slower-than-FP32 flags) into every quantized entry of
    ``record``; ``live``: the run's artifacts by name."""
    entries = [record["baseline"], *record["artifacts"]]
    cfg = ctx.recipe.evaluate
    if not cfg.races:
        off = {q: versus_fp32.not_compared(s, OFF) for q, s in versus_fp32.pairs(entries)}
        versus_fp32.annotate(entries, off)
        return
    timed = [f"{q} with {s}" for q, s in versus_fp32.pairs(entries) if s]
    if timed:
        ctx.observer.event("int8-vs-fp32", f"timing {', '.join(timed)} in turn")
    with (
        ctx.timing.held("quantized vs FP32") as window,
        ctx.observer.progress("quantized vs FP32", None),
    ):
        results = time_pairs(
            entries,
            live,
            ctx.threads,
            ctx.data.validation.sample_batch,
            batch=record["baseline"]["latency_ms"]["batch"],
            warmup=cfg.warmup,
            repeats=cfg.repeats,
        )
    for result in results.values():
        if "not_compared" not in result:
            result["timed_between"] = window
    for entry in versus_fp32.annotate(entries, results):
        ctx.observer.event("warning", versus_fp32.describe(entry))


def head_to_head_of_finalists(
    record: dict[str, Any], ctx: Context, live: dict[str, Artifact]
) -> dict[str, Any] | None:
    """The record's ``head_to_head``: the finalists timed in one loop, in turn; None when
    fewer than two are left, ``{error}`` when it failed (the separate benchmarks stand)."""
    cfg = ctx.recipe.evaluate
    if not cfg.races:
        return {"skipped": OFF, "results": {}}
    wanted = ctx.recipe.targets.model_dump()
    names = [e["name"] for e in targets.finalists(record["baseline"], record["artifacts"], wanted)]
    arts = [live[n] for n in names if n in live]
    if len(arts) < 2:
        return None  # nothing to compare

    ctx.observer.event("head-to-head", f"timing {', '.join(names)} in turn")
    runtimes: dict[str, Any] = {}
    try:
        for art in arts:
            runtimes[art.name] = runtime_for(art, ctx.threads)
        with (
            ctx.timing.held("head-to-head of the finalists") as window,
            ctx.observer.progress("head-to-head", None),
        ):
            race = head_to_head(
                runtimes,
                ctx.data.validation.sample_batch,
                batch=record["baseline"]["latency_ms"]["batch"],
                warmup=cfg.warmup,
                repeats=cfg.repeats,
            )
        return race | {"window": targets.FINALIST_WINDOW, "timed_between": window}
    except Exception as e:  # the separate benchmarks still stand
        return {"error": first_line(e), "results": {}}
    finally:
        for runtime in reversed(list(runtimes.values())):  # torch's threads: last in, first out
            runtime.close()


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
    for name, sib in versus_fp32.pairs(entries):
        entry = by_name[name]
        if sib is None:
            why = f"no {entry.get('format')} fp32 artifact made from the same model in this run"
            out[name] = versus_fp32.not_compared(None, why)
        elif name not in live or sib not in live:
            out[name] = versus_fp32.not_compared(sib, "its files could not be loaded again")
        elif (b := versus_fp32.pair_batch(entry, by_name[sib], batch)) is None:
            out[name] = versus_fp32.not_compared(sib, "the two run at different fixed batch sizes")
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
                    out[name] = versus_fp32.not_compared(sib, failed.get(name) or failed[sib])
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
                    out[name] = versus_fp32.not_compared(sib, f"timing failed: {first_line(e)}")
                continue
            for name, sib in ready:
                results = race["results"]
                out[name] = versus_fp32.compared(results[name], results[sib], sib, race)
    finally:
        for runtime in reversed(list(runtimes.values())):  # torch's threads: last in, first out
            runtime.close()
    return out
