"""The races at the end of a run, under the run's timing guard: each quantized artifact timed
in one loop with its runtime's FP32 sibling (flagged when slower, ``evaluate/versus_fp32``),
then the recommendation's finalists timed side by side (``head_to_head``): the separate
benchmarks were minutes apart, on a machine whose load may have changed. Each records its
``timed_between``; ``evaluate.races: false`` records "not measured" instead."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpress.errors import first_line
from modelpress.evaluate import targets, versus_fp32
from modelpress.evaluate.benchmark import head_to_head

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact
    from modelpress.engine.context import Context

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
        results = versus_fp32.time_pairs(
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
    from modelpress.runtimes import runtime_for

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
