"""``fidelity``: outputs with no labels (embeddings, features), judged by how closely an
artifact reproduces the baseline's outputs: mean per-sample cosine."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelpress.errors import StepError
from modelpress.evaluate.compare import compare_outputs
from modelpress.tasks import register_task
from modelpress.tasks.base import Outputs, Task, counted


@register_task
class Fidelity(Task):
    name = "fidelity"
    primary = "cosine"
    needs_labels = False
    # the argmax over embedding dimensions means nothing: a child is judged by cosine
    verified_by = "cosine"
    metrics_against_baseline = True

    def metrics(
        self, outputs: Outputs, labels: np.ndarray | None, reference: Outputs | None = None
    ) -> dict[str, Any]:
        """cosine, max and mean |Δ| and top-1 agreement against the ``reference`` outputs."""
        if reference is None:
            raise ValueError("fidelity needs the reference model's outputs")
        out, _ = counted(self.postprocess(outputs))
        cmp = compare_outputs(self.postprocess(outputs), self.postprocess(reference))
        return out | {k: cmp[k] for k in ("cosine", "max_abs_diff", "mean_abs_diff", "agreement")}

    def confidence(self, outputs: Outputs) -> np.ndarray:
        raise StepError(
            "task fidelity has no confidence: its outputs are embeddings, not class scores; a "
            "cascade needs a classification or binary model"
        )
