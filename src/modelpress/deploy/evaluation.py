"""A cascade measured beside each of its stages alone: the Task's metrics of their decisions,
the leakage its certificate bounds, where items are decided, and time.

Metrics are the Task's (``Task.decision_metrics``, numbers from ``evaluate/metrics.py``). Time
is the harness's (``evaluate/benchmark.py``): whole-split passes after a warm-up pass that
also gives the routes measured (``latency_and_result``: median of ``repeats``, the spread and
the machine's load checked, reasons in ``unreliable``), and one item at a time for the batch-1
latency after one warm-up item (``time_callable``; its spread is not checked, since a
cascade's items take different ways and their latencies differ by design). A real run of new
items (``cascade run``) times each batch once on the same clock (``once``), the cascade warmed
up first (``Cascade.warm_up``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from modelpress.deploy.routing import CascadeError

if TYPE_CHECKING:
    from modelpress.deploy.runner import Cascade
    from modelpress.deploy.stage import Routed

T = TypeVar("T")

SINGLE_ITEMS = 100  # items timed one at a time for the batch-1 latency
WARMUP = 1  # untimed whole-split passes before the timed ones (the first gives the answers)


def once(fn: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of one call of ``fn`` on the harness's clock
    (``evaluate/benchmark.clock``): each batch of a real run, timed as it is decided."""
    from modelpress.evaluate.benchmark import clock

    start = clock()
    out = fn()
    return clock() - start, out


def single_ms(fn: Callable[[list[np.ndarray]], object], inputs: list[np.ndarray]) -> dict:
    """p50 / p90 ms of ``fn`` on one item at a time (the first ``SINGLE_ITEMS`` items, after
    one warm-up call on the first)."""
    from modelpress.evaluate.benchmark import time_callable

    n = min(SINGLE_ITEMS, len(inputs[0]))
    if not n:
        return {"p50": float("nan"), "p90": float("nan")}
    items = [[a[i : i + 1] for a in inputs] for i in range(n)]
    order = iter([items[0], *items])  # the warm-up call, then each item once
    times = time_callable(lambda: fn(next(order)), 1, n)
    return {"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90))}


def _passes(fn: Callable[[], T], n: int, repeats: int, threads: int) -> tuple[dict, T]:
    """(ms per item, items/s and why not to trust them, of whole-split passes of ``fn`` over
    ``n`` items; what ``fn`` returned)."""
    from modelpress.evaluate.benchmark import latency_and_result

    stats, out = latency_and_result(fn, WARMUP, repeats, n, threads)
    ms = max(stats.median, 1e-9)
    return {
        "ms_per_item": ms / n,
        "throughput_per_s": 1000 * n / ms,
        "unreliable": stats.unreliable,
    }, out


def leakage(cascade: Cascade, labels: np.ndarray, routed: Routed) -> dict[str, Any]:
    """What the certificate bounds, measured: the guarded classes' items exiting early as
    another (binary: positives exiting negative), or without guarded classes the early exits'
    errors."""
    early = routed.stage < len(cascade.stages) - 1
    guarded = cascade.rule.guarded(cascade.meta)
    if guarded:
        trials = np.isin(labels, guarded)
        failed = early & trials & ~np.isin(routed.decision, guarded)
    else:
        trials = early
        failed = early & (routed.decision != labels)
    n = int(trials.sum())
    return {
        "leakage": int(failed.sum()) / n if n else None,
        "leaked": int(failed.sum()),
        "positives": n,
    }


def evaluate(
    cascade: Cascade, inputs: list[np.ndarray], labels: np.ndarray, repeats: int = 3
) -> dict[str, Any]:
    """The cascade and each stage alone on ``inputs``: AUC, F1, P, R, leakage, deferred and
    stage shares, the time per item and throughput of each (whole-split passes after a warm-up
    one, median of ``repeats``, stages in their runtimes; ``unreliable`` says why not to trust
    them), and their batch-1 latency (p50 / p90)."""
    from modelpress.deploy.calibration import calibrated_probs

    task, y = cascade.task, cascade.labels(labels)
    n, last, threads = len(y), len(cascade.stages) - 1, cascade.threads
    if not n:
        raise CascadeError("evaluating a cascade needs items; the data gave none")
    time, routed = _passes(lambda: cascade.predict(inputs), n, repeats, threads)
    score = routed.probs if routed.probs is not None else routed.p
    figures: dict[str, Any] = {
        "cascade": {
            **task.decision_metrics(y, score, routed.decision),
            **leakage(cascade, y, routed),
            "deferred": float((routed.stage == last).mean()),
            "stage_share": [float((routed.stage == i).mean()) for i in range(last + 1)],
            **time,
            "single_ms": single_ms(cascade.predict, inputs),
            "items": n,
        },
        "stages": [],
    }
    if routed.meta_changed is not None:
        figures["cascade"]["meta_decisions"] = float((routed.stage == last).mean())
        figures["cascade"]["meta_changed"] = routed.meta_changed
    for st in cascade.stages:

        def alone(st: Any = st) -> tuple[np.ndarray, np.ndarray]:
            z = st.scores(inputs)
            return z, calibrated_probs(z, st.temperature)

        time, (z, p) = _passes(alone, n, repeats, threads)
        figures["stages"].append(
            {
                "name": st.name,
                "alone": {
                    **task.decision_metrics(y, p, st.answers(z)),
                    **time,
                    "single_ms": single_ms(st.probabilities, inputs),
                },
            }
        )
    return figures


def whole(cascade: Cascade) -> tuple[list[np.ndarray], np.ndarray]:
    """Every item of the data the cascade was loaded with (all three splits: ``cascade eval``
    is given held-out data)."""
    data = cascade.dataset
    if data is None:
        raise CascadeError("the cascade was loaded without data")
    parts = (data.train, data.calibration, data.validation)
    if any(p.labels is None for p in parts):
        raise CascadeError(f"{data.source}: evaluating a cascade needs labelled data")
    inputs = [np.concatenate([p.inputs[i] for p in parts]) for i in range(len(parts[0].inputs))]
    return inputs, np.concatenate([p.labels for p in parts])
