"""The one place that times: latency, throughput, peak memory, size, parameters, MACs.

Every runtime is measured by the same loop: warm-up calls, then ``repeats`` timed calls of one
prepared batch (inputs converted once, up front), reporting median and p90. Peak memory is the
process's high-water mark (VmHWM) during inference, reset just before it through
/proc/self/clear_refs, so each artifact's peak is its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from modelpress.runtimes.base import Runtime


@dataclass(frozen=True)
class LatencyStats:
    median: float  # milliseconds per call
    p90: float
    mean: float
    min: float
    repeats: int
    batch: int
    threads: int

    def as_dict(self) -> dict:
        return asdict(self)


def time_callable(fn: Callable[[], object], warmup: int, repeats: int) -> np.ndarray:
    """Milliseconds of each of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter_ns()
        fn()
        times[i] = (time.perf_counter_ns() - start) / 1e6
    return times


def latency(
    fn: Callable[[], object], warmup: int, repeats: int, batch: int, threads: int
) -> LatencyStats:
    t = time_callable(fn, warmup, repeats)
    return LatencyStats(
        median=float(np.median(t)),
        p90=float(np.percentile(t, 90)),
        mean=float(t.mean()),
        min=float(t.min()),
        repeats=repeats,
        batch=batch,
        threads=threads,
    )


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_memory_mb(fn: Callable[[], object], calls: int = 3) -> tuple[float | None, float | None]:
    """(peak RSS during ``calls`` calls, growth over the RSS just before), in MiB.

    Returns (None, None) where the kernel does not let us reset the high-water mark.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        return None, None
    before = _status_kb("VmRSS")
    for _ in range(calls):
        fn()
    peak = _status_kb("VmHWM")
    if peak is None or before is None:
        return None, None
    return peak / 1024, max(0, peak - before) / 1024


def files_size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def count_macs(module, example: list) -> int | None:
    """Multiply-accumulates of one forward pass, from torch's flop counter (FLOPs / 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            module(*example)
    except Exception:  # scripted or exotic modules the counter cannot follow
        return None
    return int(counter.get_total_flops() // 2)


def benchmark_runtime(
    runtime: Runtime,
    sample_batch: Callable[[int], list[np.ndarray]],
    *,
    batch_sizes: list[int],
    warmup: int,
    repeats: int,
) -> dict:
    """Latency at each batch size (the first is *the* latency), throughput at the largest."""
    by_batch = []
    for batch in batch_sizes:
        if runtime.fixed_batch is not None and batch != runtime.fixed_batch:
            continue
        fn = runtime.prepare(sample_batch(batch))
        stats = latency(fn, warmup, repeats, batch, runtime.threads)
        by_batch.append(stats.as_dict() | {"throughput_per_s": 1000.0 * batch / stats.median})
    if not by_batch:  # fixed-batch artifact whose batch is not among those asked
        batch = runtime.fixed_batch or 1
        fn = runtime.prepare(sample_batch(batch))
        stats = latency(fn, warmup, repeats, batch, runtime.threads)
        by_batch.append(stats.as_dict() | {"throughput_per_s": 1000.0 * batch / stats.median})
    largest = max(by_batch, key=lambda b: b["batch"])
    peak, growth = peak_memory_mb(runtime.prepare(sample_batch(largest["batch"])))
    first = by_batch[0]
    return {
        "latency_ms": {
            k: first[k] for k in ("median", "p90", "mean", "min", "batch", "threads", "repeats")
        },
        "latency_by_batch": by_batch,
        "throughput_per_s": largest["throughput_per_s"],
        "throughput_batch": largest["batch"],
        "peak_memory_mb": peak,
        "memory_growth_mb": growth,
    }
