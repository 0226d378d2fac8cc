"""Measure one artifact in its own runtime: outputs, metrics, verification, benchmark.

The runner, ``modelpress bench`` and ``modelpress export`` all go through ``analyze``. A file
for a native runtime (ONNX Runtime, LiteRT, OpenVINO) is run in a process of its own
(``isolated``), so that a runtime that crashes fails that artifact, not the run; torch
artifacts are run here, where torch is. Either way its metrics come from ``evaluate_split``
and its timings hold the run's guard (``ctx.timing``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.engine.measure import isolated
from modelpress.engine.measure.benchmark import benchmark_runtime
from modelpress.engine.measure.coverage import int8_coverage
from modelpress.engine.measure.evaluation import evaluate_split
from modelpress.engine.measure.own_memory import own_peak
from modelpress.evaluate.size import artifact_size, count_macs
from modelpress.runtimes import file_param_count, runtime_for

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact
    from modelpress.engine.context import Context


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
                guard=lambda: ctx.timing.held(f"{artifact.name}: measured in its own process"),
                own_memory=cfg.own_process_memory,
                coverage=cfg.int8_coverage,
            )
        evaluated = evaluate_split(
            ctx, artifact, val, reference=reference_outputs, outputs=measured.outputs
        )
    else:
        evaluated = evaluate_split(ctx, artifact, val, reference=reference_outputs)
        measured = _measure_here(artifact, ctx, timed_task, evaluated.outputs)
    outputs, metrics, bench = evaluated.outputs, evaluated.metrics, measured.bench
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
    for timed in entry.get("latency_by_batch") or []:  # a slow model's timing, cut short
        if timed.get("cut"):
            entry["notes"].append(f"batch {timed['batch']}: {timed['cut']}")
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


def _measure_here(
    artifact: Artifact, ctx: Context, timed_task: Any, outputs: list[np.ndarray]
) -> isolated.Measured:
    """A torch artifact (the baseline in memory, a ``.pt2``, TorchScript) timed in this
    process, where torch is (``outputs``: its evaluation's); its file, if any, still has its
    peak memory in a process of its own."""
    cfg = ctx.recipe.evaluate
    val = ctx.data.validation
    runtime = runtime_for(artifact, ctx.threads)
    try:
        with (
            ctx.timing.held(f"{artifact.name}: benchmark") as window,
            ctx.observer.progress(f"benchmark {artifact.name}", None),
        ):
            bench = benchmark_runtime(
                runtime,
                val.sample_batch,
                batch_sizes=cfg.batch_sizes,
                warmup=cfg.warmup,
                repeats=cfg.repeats,
                postprocess=timed_task.timed_postprocess if timed_task else None,
            )
        params = runtime.param_count() or None
        coverage = int8_coverage(
            runtime, val.sample_batch(runtime.fixed_batch or 1), cfg.int8_coverage
        )
        names = runtime.output_names()
    finally:
        runtime.close()
    # the deployed file alone in a fresh process: what a device's budget sees, next to the
    # in-process peak (torch and every runtime loaded), at that figure's batch
    own_memory = own_peak(artifact, ctx, bench)
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
