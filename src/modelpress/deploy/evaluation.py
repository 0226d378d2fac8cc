"""A cascade measured beside each of its stages alone: the Task's metrics of their decisions,
the leakage its certificate bounds, where items are decided, and time.

Metrics are the Task's (``Task.decision_metrics``, numbers from ``evaluate/metrics.py``); time
is taken by the engine's timing function (``evaluate/benchmark.time_callable``): whole-split
passes, median of ``repeats``, and one item at a time for the batch-1 latency, since a
cascade's latency depends on the way each item goes.
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


def timed(fn: Callable[[], T], repeats: int = 1) -> tuple[float, T]:
    """(median seconds of ``repeats`` calls of ``fn``, what the last call returned), timed by
    the engine's timing function with no warm-up."""
    from modelpress.evaluate.benchmark import time_callable

    box: list[T] = []
    ms = time_callable(lambda: box.append(fn()), 0, repeats)
    return float(np.median(ms)) / 1000, box[-1]


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
    stage shares, the time per item and throughput of each (whole-split passes, median of
    ``repeats``, stages in their runtimes), and their batch-1 latency (p50 / p90)."""
    from modelpress.deploy.calibration import calibrated_probs

    task, y = cascade.task, cascade.labels(labels)
    n, last = len(y), len(cascade.stages) - 1
    seconds, routed = timed(lambda: cascade.predict(inputs), repeats)
    score = routed.probs if routed.probs is not None else routed.p
    figures: dict[str, Any] = {
        "cascade": {
            **task.decision_metrics(y, score, routed.decision),
            **leakage(cascade, y, routed),
            "deferred": float((routed.stage == last).mean()),
            "stage_share": [float((routed.stage == i).mean()) for i in range(last + 1)],
            "ms_per_item": 1000 * seconds / n,
            "throughput_per_s": n / seconds,
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

        s, (z, p) = timed(alone, repeats)
        figures["stages"].append(
            {
                "name": st.name,
                "alone": {
                    **task.decision_metrics(y, p, st.answers(z)),
                    "ms_per_item": 1000 * s / n,
                    "throughput_per_s": n / s,
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
