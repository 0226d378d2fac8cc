"""The one place that times: latency, throughput, peak memory (sizes: ``evaluate/size.py``).

Every runtime is measured by the same loop: warm-up calls, then ``repeats`` timed calls of one
prepared batch (inputs converted once, up front), reporting median and p90. Peak memory is the
process's high-water mark (VmHWM) during inference, reset just before it through
/proc/self/clear_refs, so each artifact's peak is its own. It counts what the measuring process
holds: modelpress's (torch and every runtime loaded) for a torch artifact, the artifact's own
process for a file in a native runtime (``isolated``); ``own_process`` measures the peak of a
process that only loads the file and runs it.

A task with work after the model (detection's decode and NMS) is timed with it in one loop
(``time_with_postprocess``): end-to-end is never below the model alone.

Timings taken on a busy machine say so: a spread (p90 / p50) over ``MAX_SPREAD`` or a 1-minute
load average above the thread count while timing puts the reasons in the stats' ``unreliable``.
The finalists of a recommendation are timed once more side by side (``head_to_head``), so the
choice does not rest on numbers measured minutes apart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from modelpress.runtimes.base import Runtime

if TYPE_CHECKING:
    pass

# Timings whose p90 is over this multiple of their median are flagged unreliable.
MAX_SPREAD = 2.0
# A timing of one batch size stops asking for more calls past this many seconds (a model whose
# one call takes seconds: a 2.4 GB encoder spent 19 minutes on its baseline's timings), keeping
# at least MIN_REPEATS calls; the stats say how many were asked and why fewer were made.
BUDGET_S = 60.0
MIN_REPEATS = 5

T = TypeVar("T")


@dataclass(frozen=True)
class LatencyStats:
    median: float  # milliseconds per call
    p90: float
    mean: float
    min: float
    repeats: int
    batch: int
    threads: int
    unreliable: list[str] = field(default_factory=list)  # why not to trust them; [] = fine
    cut: str | None = None  # why fewer calls were timed than asked (the time budget), or None

    @classmethod
    def of(cls, times: np.ndarray, batch: int, threads: int, load: list[str]) -> LatencyStats:
        """Stats of per-call milliseconds; ``load``: reasons the whole measurement shares."""
        median, p90 = float(np.median(times)), float(np.percentile(times, 90))
        spread = p90 / median if median > 0 else float("inf")
        reasons = [f"p90/p50 is {spread:.2f} (> {MAX_SPREAD:g})"] if spread > MAX_SPREAD else []
        return cls(
            median=median,
            p90=p90,
            mean=float(times.mean()),
            min=float(times.min()),
            repeats=len(times),
            batch=batch,
            threads=threads,
            unreliable=reasons + load,
        )

    def as_dict(self) -> dict:
        d = asdict(self)
        if d["cut"] is None:  # only a cut timing says so: records read as before otherwise
            del d["cut"]
        return d


def clock() -> float:
    """Seconds on the clock every timing here reads (``time.perf_counter_ns``), for a timing
    that cannot be one call: a video frame's decode-to-score latency, taken across threads."""
    return time.perf_counter_ns() / 1e9


def timing_threads(asked: int | None) -> int:
    """The threads a model is run and timed at: ``asked``, at most this machine's logical cores
    (more only slows it down); None: all of them."""
    cores = os.cpu_count() or 1
    return min(asked or cores, cores)


def time_callable(
    fn: Callable[[], object], warmup: int, repeats: int, budget_s: float | None = None
) -> np.ndarray:
    """Milliseconds of each of ``repeats`` calls after ``warmup`` untimed ones. With
    ``budget_s``: no more calls (warm-up or timed) once that many seconds have passed, as
    long as one warm-up call and ``MIN_REPEATS`` timed ones were made (fewer times returned)."""
    began = time.perf_counter()

    def over() -> bool:
        return budget_s is not None and time.perf_counter() - began > budget_s

    for i in range(warmup):
        if i >= 1 and over():
            break
        fn()
    times: list[float] = []
    for i in range(repeats):
        if i >= MIN_REPEATS and over():
            break
        start = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return np.asarray(times)


def time_in_turns(
    calls: dict[str, Callable[[], object]], repeats: int, per_turn: int = 10, settle: int = 10
) -> dict[str, np.ndarray]:
    """Milliseconds of ``repeats`` calls of each callable, timed in one loop so that they share
    the machine's state. Each round gives every callable one turn, starting one further along
    each round (rotating order); a turn is ``settle`` untimed calls, then ``per_turn`` timed
    ones. The untimed calls matter: a runtime's worker threads keep spinning for a while after
    its call returns (ONNX Runtime's by default, OpenVINO's, XNNPACK's), and on a small machine
    they take the cores from whichever callable runs next, and the others' weights have left
    the caches. Alternating single calls made ORT FP32 read 6.6 ms against 1.5 ms in blocks;
    turns of 2 + 5 calls still read a LiteRT INT8 MobileNetV3 at 1.17 ms against 0.79 ms in
    blocks of 100."""
    names = list(calls)
    per_turn = max(1, min(per_turn, repeats))
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(-(-repeats // per_turn)):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            for _ in range(settle):
                calls[name]()
            for _ in range(min(per_turn, repeats - len(times[name]))):
                start = time.perf_counter_ns()
                calls[name]()
                times[name].append((time.perf_counter_ns() - start) / 1e6)
    return {name: np.asarray(t) for name, t in times.items()}


def median_ms_side_by_side(calls: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median ms of each call, timed in turns (``time_in_turns``): for choosing between two
    builds that often differ by a few per cent. The caller holds the run's timing guard
    (``engine/measure/timing``)."""
    times = time_in_turns(calls, 60, 15, 5)
    return {k: float(np.median(t)) for k, t in times.items()}


def latency(
    fn: Callable[[], object],
    warmup: int,
    repeats: int,
    batch: int,
    threads: int,
    budget_s: float | None = BUDGET_S,
) -> LatencyStats:
    """Latency stats of ``fn``; a slow model's timing stops at ``budget_s`` seconds (at least
    ``MIN_REPEATS`` calls), and ``cut`` says so."""
    with LoadWatch(threads) as load:
        t = time_callable(fn, warmup, repeats, budget_s)
    stats = LatencyStats.of(t, batch, threads, load.reasons)
    if len(t) < repeats:
        stats = replace(
            stats,
            cut=f"{len(t)} of {repeats} calls timed: one call takes {np.median(t) / 1000:.2g} s "
            f"and the timing of one batch size stops at {budget_s:g} s",
        )
    return stats


def latency_and_result(
    fn: Callable[[], T], warmup: int, repeats: int, batch: int, threads: int
) -> tuple[LatencyStats, T]:
    """``latency`` of ``fn``, and what its first call returned: that call is the first of the
    ``warmup`` (at least one) untimed calls. For a measurement whose answer is wanted as well
    (a cascade's routes on a split, timed by the passes that give them)."""
    if warmup < 1:
        raise ValueError("the first call gives the result and is not timed: warmup ≥ 1")
    result = fn()
    return latency(fn, warmup - 1, repeats, batch, threads), result


class LoadWatch:
    """The 1-minute load average before and after a measurement; ``reasons`` says when it was
    above ``threads`` (other work competed for the cores: the timings are unreliable)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.before: float | None = None
        self.after: float | None = None

    @staticmethod
    def _now() -> float | None:
        try:
            return os.getloadavg()[0]
        except OSError:  # not available on this platform
            return None

    def __enter__(self) -> LoadWatch:
        self.before = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.after = self._now()

    @property
    def reasons(self) -> list[str]:
        known = [v for v in (self.before, self.after) if v is not None]
        if not known or max(known) <= self.threads:
            return []
        thread = "thread" if self.threads == 1 else "threads"
        return [
            f"1-minute load average {max(known):.2f} (> {self.threads} {thread}): "
            "other work was running"
        ]


def proc_status_kb(field: str) -> int | None:
    """A ``/proc/self/status`` field in kB (VmRSS, VmHWM); None where there is none."""
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
    before = proc_status_kb("VmRSS")
    for _ in range(calls):
        fn()
    peak = proc_status_kb("VmHWM")
    if peak is None or before is None:
        return None, None
    return peak / 1024, max(0, peak - before) / 1024


def time_with_postprocess(
    call: Callable[[], object],
    post: Callable[[object], object],
    warmup: int,
    repeats: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(model ms, end-to-end ms) of each of ``repeats`` iterations after ``warmup`` untimed
    ones. One iteration is ``call()`` (the model), then ``post`` on what it returned (reading
    the outputs, the task's postprocess), timed against one clock: the model is the first part
    of its own end-to-end time, so end-to-end ≥ model in every iteration, and so in every
    percentile. Two separate loops would compare timings taken seconds apart (a detector's
    end-to-end once read 37.1 ms against 51.9 ms for the model alone)."""
    for _ in range(warmup):
        post(call())
    model, total = np.empty(repeats), np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter_ns()
        result = call()
        mid = time.perf_counter_ns()
        post(result)
        end = time.perf_counter_ns()
        model[i], total[i] = (mid - start) / 1e6, (end - start) / 1e6
    return model, total


def benchmark_runtime(
    runtime: Runtime,
    sample_batch: Callable[[int], list[np.ndarray]],
    *,
    batch_sizes: list[int],
    warmup: int,
    repeats: int,
    postprocess: Callable[[list[np.ndarray]], object] | None = None,
) -> dict:
    """Latency at each batch size (the first is *the* latency), throughput at the largest.

    A fixed-batch artifact is timed at its batch only; ``batches_not_measured`` lists the
    batch sizes asked for that it cannot take. With ``postprocess`` (a task's work after the
    model: detection's decode and NMS), the model at batch 1 (else the first batch measured)
    is timed with it in one loop (``time_with_postprocess``): that batch's latency is the
    model's part of each iteration, and ``end_to_end_ms`` the whole iteration."""
    fixed = runtime.fixed_batch
    skipped = [b for b in batch_sizes if fixed is not None and b != fixed]
    batches = [b for b in batch_sizes if b not in skipped] or [fixed or 1]
    paired = 1 if 1 in batches else batches[0]
    by_batch: list[dict[str, Any]] = []
    end_to_end: dict[str, Any] | None = None
    for batch in batches:
        fn = runtime.prepare(sample_batch(batch))
        if postprocess is None or batch != paired or end_to_end is not None:
            stats = latency(fn, warmup, repeats, batch, runtime.threads)
        else:
            with LoadWatch(runtime.threads) as load:
                model, total = time_with_postprocess(
                    fn, lambda r: postprocess(runtime.read_outputs(r)), warmup, repeats
                )
            stats = LatencyStats.of(model, batch, runtime.threads, load.reasons)
            both = LatencyStats.of(total, batch, runtime.threads, load.reasons)
            end_to_end = {
                "median": both.median,
                "p90": both.p90,
                "batch": batch,
                "repeats": repeats,
                "model_median": stats.median,  # the same iterations' model part (latency)
                "postprocess_median": float(np.median(total - model)),
                "unreliable": both.unreliable,
            }
        by_batch.append(stats.as_dict() | {"throughput_per_s": 1000.0 * batch / stats.median})
    largest = max(by_batch, key=lambda b: b["batch"])
    peak, growth = peak_memory_mb(runtime.prepare(sample_batch(largest["batch"])))
    first = by_batch[0]
    out = {
        "latency_ms": {
            k: first[k]
            for k in ("median", "p90", "mean", "min", "batch", "threads", "repeats", "unreliable")
        }
        | ({"cut": first["cut"]} if first.get("cut") else {}),
        "latency_by_batch": by_batch,
        "batches_not_measured": skipped,
        "throughput_per_s": largest["throughput_per_s"],
        "throughput_batch": largest["batch"],
        "peak_memory_mb": peak,
        "memory_growth_mb": growth,
    }
    if end_to_end is not None:
        out["end_to_end_ms"] = end_to_end
    return out


def head_to_head(
    runtimes: dict[str, Runtime],
    sample_batch: Callable[[int], list[np.ndarray]],
    *,
    batch: int,
    warmup: int,
    repeats: int,
    per_turn: int = 10,
    settle: int = 10,
) -> dict[str, Any]:
    """Time several artifacts in one loop (``time_in_turns``: rotating turns of ``settle``
    untimed and ``per_turn`` timed calls), after ``warmup`` untimed rounds. Returns per
    artifact its median and p90 (ms) over ``repeats`` timed calls, and the fastest by median."""
    names = list(runtimes)
    fns = {name: runtimes[name].prepare(sample_batch(batch)) for name in names}
    threads = max(r.threads for r in runtimes.values())
    per_turn = max(1, min(per_turn, repeats))
    for _ in range(warmup):
        for name in names:
            fns[name]()
    with LoadWatch(threads) as load:
        times = time_in_turns(fns, repeats, per_turn, settle)
    results = {
        name: LatencyStats.of(times[name], batch, runtimes[name].threads, load.reasons).as_dict()
        for name in names
    }
    fastest = min(names, key=lambda n: results[n]["median"])
    return {
        "batch": batch,
        "repeats": repeats,
        "warmup": warmup,
        "threads": threads,
        "order": f"rotating turns of {settle} untimed + {per_turn} timed calls each",
        "results": results,
        "fastest": fastest,
        "load_1min": [load.before, load.after],
        "unreliable": sorted({r for res in results.values() for r in res["unreliable"]}),
    }
