"""THE timing guard of a run, passed in (never patched in), and a step's candidates timed
side by side under it.

Whoever runs the graph gives the runner its guard (``Runner(guard=...)``); a parallel search's
worker gives its machine-wide lock (search/parallel.py), so no two timings share the CPU and none
runs beside another worker's training. Every timing holds it: the harness (``harness``), the
own-process peak (``own_memory``), a step's candidates (``time_side_by_side``, offered to steps
as ``ctx.time_side_by_side``), the races (``races``); each records ``timed_between``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelpress.engine.measure import benchmark

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact
    from modelpress.engine.context import Context

Guard = Callable[[], contextlib.AbstractContextManager[Any]]


class Timing:
    """THE guard of every timing of a run — harness, own-process memory, a step's candidates,
    the races — passed in by whoever runs the graph (a parallel search's worker: its
    machine-wide lock, so no two benchmarks share the CPU and none runs beside a training),
    and when each timing ran (``windows``; each timing's record entry has its own
    ``timed_between``: wall-clock start and end)."""

    def __init__(self, guard: Guard | None = None) -> None:
        self.guard: Guard = guard or contextlib.nullcontext
        self.windows: list[dict[str, Any]] = []  # {"what", "timed_between"}, in order

    @contextlib.contextmanager
    def held(self, what: str) -> Iterator[list[float]]:
        """The guard held around one timing; yields its ``timed_between``, whose end is
        appended when the timing ends."""
        with self.guard():
            window = [time.time()]
            try:
                yield window
            finally:
                window.append(time.time())
                self.windows.append({"what": what, "timed_between": window})


@dataclass(frozen=True)
class SideBySide:
    """A step's candidates timed side by side: median ms each, and when."""

    ms: dict[str, float]  # at batch 1 (a file's fixed batch where it has one)
    timed_between: list[float]


def time_side_by_side(ctx: Context, artifacts: dict[str, Artifact], what: str) -> SideBySide:
    """Median ms of each of a step's candidate files, timed in turns at batch 1 in its runtime
    (``median_ms_side_by_side``), under the run's timing guard: for choosing between builds
    that often differ by a few per cent (ONNX's activation type and fused graph, TFLite's stem)."""
    runtimes: dict[str, Any] = {}
    try:
        from modelpress.runtimes import runtime_for

        for key, art in artifacts.items():
            runtimes[key] = runtime_for(art, ctx.threads)
        calls = {
            key: rt.prepare(ctx.data.validation.sample_batch(rt.fixed_batch or 1))
            for key, rt in runtimes.items()
        }
        with ctx.timing.held(what) as window:
            ms = benchmark.median_ms_side_by_side(calls)
    finally:
        for rt in reversed(list(runtimes.values())):
            rt.close()
    return SideBySide(ms, window)
