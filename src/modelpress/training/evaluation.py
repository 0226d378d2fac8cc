"""The validation metrics training selects its best epoch by.

This is the one place training measures a model, and a second implementation of what the
engine's evaluation of a split does (issue 21: ``engine/measure/`` becomes the one place):
the next change replaces the body of ``evaluate_module`` with that evaluation, handed in, so
that training no longer runs a runtime itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.runtimes.eager import TorchRuntime
from modelpress.sources.data import Dataset

if TYPE_CHECKING:
    from modelpress.tasks.base import Task


def evaluate_module(model: nn.Module, data: Dataset, task: Task, threads: int) -> dict[str, Any]:
    """Validation metrics of a torch module, through the runtime and metrics any artifact uses."""
    art = Artifact("training", "torch", data.input_specs(), module=model)
    runtime = TorchRuntime(art, threads)
    try:
        outputs = runtime.predict_all(data.validation.inputs, 256)
    finally:
        runtime.close()
    return task.metrics(outputs, data.validation.labels)
