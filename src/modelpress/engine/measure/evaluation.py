"""THE evaluation of a split: an artifact run in its own runtime on every sample (every output
kept, in the model's order), scored by the task. The runner's measurement, a search's fine pass
and a step's candidates (``ctx.evaluate``) all score through ``evaluate_split``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact
    from modelpress.engine.context import Context
    from modelpress.sources.data import Split


@dataclass(frozen=True)
class Evaluated:
    outputs: list[np.ndarray]  # every output on the split, in the model's order: (N, ...) each
    metrics: dict[str, Any]  # the task's, with ``samples``


def evaluate_split(
    ctx: Context,
    artifact: Artifact,
    split: Split,
    *,
    reference: list[np.ndarray] | None = None,
    outputs: list[np.ndarray] | None = None,
    score: bool = True,
) -> Evaluated:
    """``artifact`` on ``split``: run in its runtime (``ctx.threads``, the recipe's
    ``eval_batch_size``) unless its ``outputs`` there were already read (a file measured in its
    own process evaluates there), and the task's metrics of them against the split's labels and,
    for a task scored against a model's outputs (fidelity), ``reference`` (default: its own).
    ``score`` False: the outputs only (``metrics`` empty), for a step comparing raw outputs."""
    if outputs is None:
        from modelpress.runtimes import runtime_for

        runtime = runtime_for(artifact, ctx.threads)
        try:
            with ctx.observer.progress(f"evaluate {artifact.name}", None):
                outputs = runtime.predict_all(split.inputs, ctx.recipe.evaluate.eval_batch_size)
        finally:
            runtime.close()
    if not score:
        return Evaluated(outputs, {})
    ref = reference if reference is not None else outputs
    return Evaluated(outputs, ctx.task.metrics(outputs, split.labels, reference=ref))
