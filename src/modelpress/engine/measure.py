"""Measure one artifact in its own runtime: outputs, metrics, verification, benchmark.

The runner, ``modelpress bench`` and ``modelpress export`` all go through ``analyze``. A file
for a native runtime (ONNX Runtime, LiteRT, OpenVINO) is run in a process of its own
(``evaluate/isolated``), so that a runtime that crashes fails that artifact, not the run; torch
artifacts are run here, where torch is.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.evaluate import benchmark, isolated
from modelpress.evaluate.benchmark import artifact_size, benchmark_runtime, count_macs
from modelpress.evaluate.coverage import int8_coverage
from modelpress.evaluate.own_process import OFF as OWN_OFF
from modelpress.evaluate.own_process import own_process_peak, skip_reason
from modelpress.runtimes import file_param_count, runtime_for

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact
    from modelpress.engine.context import Context


def _unguarded() -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


# Entered around every timing of an artifact (latency, throughput, peak memory): parallel
# search workers set it to a machine-wide lock, so no two benchmarks share the CPU.
timing_guard: Callable[[], contextlib.AbstractContextManager[None]] = _unguarded


def _installed_guard() -> contextlib.AbstractContextManager[None]:
    return timing_guard()  # the one installed when the timing runs, not at import


# steps time candidate builds through evaluate/benchmark (they do not import the engine):
# the same guard
benchmark.timing_guard = _installed_guard


def analyze(
    artifact: Artifact,
    ctx: Context,
    *,
    parent_outputs: list[np.ndarray] | None = None,
    reference_outputs: list[np.ndarray] | None = None,
    parent_entry: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Return (record entry, validation outputs: every output of the model, in order).
    ``reference_outputs``: the baseline's, for
    fidelity tasks; ``parent_outputs``: the parent artifact's, for verification;
    ``parent_entry``: the parent's record entry, whose parameter and MAC counts hold for a
    format that hides them (a frozen TorchScript module has constants, not parameters)."""
    cfg = ctx.recipe.evaluate
    val = ctx.data.validation
    timed_task = ctx.task if ctx.task.times_postprocess else None
    if isolated.isolated(artifact):  # native code: a crash costs this artifact, not the run
        with ctx.observer.progress(f"measure {artifact.name} in its own process", None):
            measured = isolated.measure(
                artifact,
                val,
                threads=ctx.threads,
                eval_batch_size=cfg.eval_batch_size,
                batch_sizes=cfg.batch_sizes,
                warmup=cfg.warmup,
                repeats=cfg.repeats,
                task=timed_task,
                guard=_installed_guard,
                own_memory=cfg.own_process_memory,
                coverage=cfg.int8_coverage,
            )
    else:
        measured = _measure_here(artifact, ctx, timed_task)
    outputs, bench = measured.outputs, measured.bench
    params = measured.params or file_param_count(artifact)
    if "end_to_end_ms" in bench and timed_task is not None:
        says = timed_task.timed_postprocess_says  # postprocess_median: this, outputs read first
        bench["end_to_end_ms"]["postprocess"] = f"reading the outputs, then {says}"
    names = measured.names
    described = [
        {"name": names[i] if i < len(names) else f"output_{i}", "shape": list(o.shape[1:])}
        for i, o in enumerate(outputs)
    ]
    reference = reference_outputs if reference_outputs is not None else outputs
    metrics = ctx.task.metrics(outputs, val.labels, reference=reference)
    own_memory, coverage, window = measured.own_memory, measured.coverage, measured.window
    size = artifact_size(artifact)  # size_bytes, size_kind, file_bytes
    # MACs are counted on fp32 torch graphs; another format or precision of the same graph has
    # its parent's (q/dq ops are not multiply-adds, and counting would run the slow reference)
    if artifact.format == "torch" and artifact.precision == "fp32" and artifact.module is not None:
        macs = count_macs(artifact.module, ctx.example_inputs(1))
    else:
        macs = parent_entry.get("macs") if parent_entry else None
    if params is None and parent_entry and artifact.precision == parent_entry.get("precision"):
        params = parent_entry.get("params")
    entry: dict[str, Any] = {
        "name": artifact.name,
        "format": artifact.format,
        "precision": artifact.precision,
        "runtime": measured.runtime,
        "path": str(artifact.path) if artifact.path else None,
        "extra_files": [str(p) for p in artifact.extra_files],
        "companions": [str(p) for p in artifact.companions],
        "handoffs": {k: str(p) for k, p in artifact.handoffs.items()},
        "parent": artifact.parent,
        "parents": list(artifact.parents),
        "step": artifact.step,
        "status": "ok",
        **size,
        "params": params,
        "macs": macs,
        **bench,
        "peak_memory_own_process": own_memory,
        "timed_between": window,  # wall-clock seconds: when the latency timing ran
        # where the runtime ran: its own process (native runtimes: a crash costs this artifact
        # only; peak_memory_mb is that process's) or modelpress's (torch, loaded there already)
        "measured_in": "own_process" if isolated.isolated(artifact) else "in_process",
        "fixed_batch": measured.fixed_batch,
        "metrics": metrics,
        "outputs": described,  # every output, in order: name and per-sample shape
        "notes": list(artifact.notes),
        "details": dict(artifact.details),
    }
    if artifact.input_transform:  # fed camera pixels (uint8 NHWC), converted in the graph
        entry["input_transform"] = dict(artifact.input_transform)
        entry["inputs"] = [s.describe() for s in artifact.input_specs]
    if "error" in own_memory:
        entry["notes"].append(f"peak memory in its own process not measured: {own_memory['error']}")
    if coverage is not None:  # int8 artifacts: what their runtime really runs in int8
        entry["int8_coverage"] = coverage
    if parent_outputs is not None:
        verification, problem = ctx.task.verify(
            outputs, parent_outputs, cfg.verify, judge=not artifact.retrained
        )
        verification["reference"] = artifact.parent
        entry["verification"] = verification
        if problem:
            entry["status"] = "degraded"
            entry["notes"].append(f"degraded: {problem} ({artifact.parent})")
    _judge_collapse(entry, ctx, reference, parent_entry, not artifact.new_model)
    return entry, outputs


def _measure_here(artifact: Artifact, ctx: Context, timed_task: Any) -> isolated.Measured:
    """A torch artifact (the baseline in memory, a ``.pt2``, TorchScript) measured in this
    process, where torch is; its file, if any, still has its peak memory in a process of its
    own."""
    cfg = ctx.recipe.evaluate
    val = ctx.data.validation
    runtime = runtime_for(artifact, ctx.threads)
    try:
        with ctx.observer.progress(f"evaluate {artifact.name}", None):
            outputs = runtime.predict_all(val.inputs, cfg.eval_batch_size)
        with timing_guard():
            window = [time.time()]
            with ctx.observer.progress(f"benchmark {artifact.name}", None):
                bench = benchmark_runtime(
                    runtime,
                    val.sample_batch,
                    batch_sizes=cfg.batch_sizes,
                    warmup=cfg.warmup,
                    repeats=cfg.repeats,
                    postprocess=timed_task.timed_postprocess if timed_task else None,
                )
            window.append(time.time())
        params = runtime.param_count() or None
        coverage = int8_coverage(
            runtime, val.sample_batch(runtime.fixed_batch or 1), cfg.int8_coverage
        )
        names = runtime.output_names()
    finally:
        runtime.close()
    # the deployed file alone in a fresh process: what a device's budget sees, next to the
    # in-process peak (torch and every runtime loaded), at that figure's batch
    reason = skip_reason(artifact) or (None if cfg.own_process_memory else OWN_OFF)
    if reason:
        own_memory: dict[str, Any] = {"skipped": reason}
    else:
        own_memory = _own_peak(artifact, ctx, bench)
    return isolated.Measured(
        outputs=outputs,
        names=names,
        bench=bench,
        params=params,
        coverage=coverage,
        runtime=runtime.name,
        fixed_batch=runtime.fixed_batch,
        window=window,
        own_memory=own_memory,
    )


def _own_peak(artifact: Artifact, ctx: Context, bench: dict[str, Any]) -> dict[str, Any]:
    val = ctx.data.validation
    with (
        timing_guard(),
        ctx.observer.progress(f"peak memory of {artifact.name} in its own process", None),
    ):
        own_memory = own_process_peak(
            artifact,
            val.sample_batch,
            batches=[bench["latency_ms"]["batch"], bench["throughput_batch"]],
            batch=bench["throughput_batch"],
            threads=ctx.threads,
        )
    return own_memory


def _judge_collapse(
    entry: dict[str, Any],
    ctx: Context,
    reference: Any,
    parent_entry: dict[str, Any] | None,
    against_parent: bool,
) -> None:
    """``collapsed`` (never recommended), with why, when the task says so: non-finite
    outputs, a primary metric at chance on this data, or far below its parent's (not for a
    new model, a distilled student: ``against_parent`` False)."""
    chance = ctx.task.chance(ctx.data.validation.labels, reference)
    if chance is not None:
        entry["chance"] = chance.to_dict()
    parent = (parent_entry or {}).get("metrics")
    why = ctx.task.collapse(entry["metrics"], parent, chance, against_parent=against_parent)
    if why:
        entry["status"] = "collapsed"
        entry["notes"].append(why)
