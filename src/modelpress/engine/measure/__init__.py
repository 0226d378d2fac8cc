"""THE measuring path: every number a run records about an artifact comes from here.

- ``harness``: one artifact measured in its runtime (``analyze``): evaluated, verified, timed.
- ``evaluation``: THE evaluation of a split (``evaluate_split``); steps reach it as
  ``ctx.evaluate``, a search's fine pass calls it.
- ``timing``: THE timing guard (``Timing``), passed in by whoever runs the graph, and a step's
  candidates timed side by side under it (``ctx.time_side_by_side``).
- ``own_process`` / ``own_memory``: peak memory of a deployed file in a process of its own.
- ``isolated``: a native runtime's file measured in a process of its own.
- ``coverage``: what an int8 artifact's runtime really runs in int8.
- ``races``: quantized artifacts timed against their FP32 siblings; the finalists head-to-head.

Names are imported lazily: ``python -m modelpress.engine.measure.own_process`` must import no
more than the runtime it measures.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "analyze": "harness",
    "evaluate_split": "evaluation",
    "Evaluated": "evaluation",
    "Guard": "timing",
    "SideBySide": "timing",
    "Timing": "timing",
    "time_side_by_side": "timing",
    "head_to_head_of_finalists": "races",
    "time_against_fp32": "races",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
