"""``fidelity``: outputs with no labels (embeddings, features), judged by how closely an
artifact reproduces the baseline's outputs: mean per-sample cosine."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelpress.errors import StepError
from modelpress.evaluate.compare import compare_outputs
from modelpress.tasks import register_task
from modelpress.tasks.base import Chance, Outputs, Task, chance_margin, counted

# Outputs one fixed vector reproduces this closely leave cosine nothing to tell chance by.
CONSTANT_ENOUGH = 0.98


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

    def chance(self, labels: np.ndarray | None, reference: Outputs | None = None) -> Chance | None:
        """The cosine to the baseline's outputs of one fixed output for every sample (their
        mean direction, the best such vector): what a model blind to its input reproduces.
        Embeddings often share a large common part, so this is far from 0 (post-ReLU features:
        0.7 and more). None where it says nothing: one value per sample, or outputs so alike
        that one vector reproduces them within cosine CONSTANT_ENOUGH."""
        if reference is None:
            return None
        flat = np.asarray(self.postprocess(reference), dtype=np.float64)
        flat = flat.reshape(len(flat), -1)
        norms = np.linalg.norm(flat, axis=1)
        keep = np.isfinite(flat).all(axis=1) & (norms > 0)
        if flat.shape[1] < 2 or keep.sum() < 2:
            return None
        unit = flat[keep] / norms[keep, None]
        mean = unit.mean(axis=0)
        if not np.linalg.norm(mean) > 0:
            return None
        cos = unit @ (mean / np.linalg.norm(mean))  # (N,) each sample's cosine to the constant
        value = float(cos.mean())
        if value >= CONSTANT_ENOUGH:
            return None
        sigma = float(cos.std() / np.sqrt(len(cos)))
        return Chance(
            self.primary,
            value,
            chance_margin(value, 1.0, sigma),
            f"one fixed output for every sample, the mean direction of the baseline's {len(cos)}",
        )

    def confidence(self, outputs: Outputs) -> np.ndarray:
        raise StepError(
            "task fidelity has no confidence: its outputs are embeddings, not class scores; a "
            "cascade needs a classification or binary model"
        )
