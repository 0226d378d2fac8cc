"""Peak memory of a deployed file in a process of its own (``own_process``), for an artifact
measured in modelpress's process (torch formats): under the run's timing guard, or recorded as
not measured (no file, a checkpoint, ``evaluate.own_process_memory`` off)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpress.engine.measure.own_process import OFF, own_process_peak, skip_reason

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact
    from modelpress.engine.context import Context


def own_peak(artifact: Artifact, ctx: Context, bench: dict[str, Any]) -> dict[str, Any]:
    """The record's ``peak_memory_own_process`` at the benchmark's batches, with its
    ``timed_between``; ``{skipped: why}`` when not measured."""
    reason = skip_reason(artifact) or (None if ctx.recipe.evaluate.own_process_memory else OFF)
    if reason:
        return {"skipped": reason}
    val = ctx.data.validation
    with (
        ctx.timing.held(f"{artifact.name}: peak memory in its own process") as window,
        ctx.observer.progress(f"peak memory of {artifact.name} in its own process", None),
    ):
        own_memory = own_process_peak(
            artifact,
            val.sample_batch,
            batches=[bench["latency_ms"]["batch"], bench["throughput_batch"]],
            batch=bench["throughput_batch"],
            threads=ctx.threads,
        )
    return own_memory | {"timed_between": window}
