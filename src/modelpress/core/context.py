"""What a step sees of the run: the ``StepContext`` protocol, implemented by the engine.

Steps (techniques, exports) sit below the engine: they are handed a context and use only these
members, so a step never imports the engine and the engine may change how it provides them.
Task, data and model-spec objects come from layers above core; they are typed here by what
they are (see the comments), not imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from modelpress.core.artifact import Artifact
from modelpress.core.inputs import InputSpec
from modelpress.core.observer import Observer
from modelpress.core.recipe import Recipe


class StepContext(Protocol):
    """The members a step may use (``engine.context.Context`` implements them)."""

    recipe: Recipe
    task: Any  # tasks.base.Task: labels, metrics, verify, losses, float_tail, confidence
    data: Any  # sources.data.Dataset: train / calibration / validation splits, classes
    input_specs: list[InputSpec]  # batch 1, dtypes as the data has them
    model_spec: Any  # sources.models.ModelSpec: what the baseline was built from
    threads: int
    observer: Observer
    baseline: dict | None  # the baseline's record entry, once measured
    deadline: float | None  # time.monotonic() by which a training step stops (a search)

    def work_dir(self) -> Path:
        """The running step's folder."""
        ...

    def example_inputs(self, batch: int = 1) -> list[Any]:
        """Real validation samples as torch tensors (tracing, exporting, counting MACs)."""
        ...

    def calibration(self, samples: int | None, where: str) -> Any:
        """The calibration split (a ``sources.data.Split``), or its first ``samples``."""
        ...

    def load_model(
        self,
        source: str,
        kwargs: dict | None = None,
        weights: str | None = None,
        where: str = "model",
        seed: int | None = None,
    ) -> tuple[Any, Any]:
        """Another torch model for this data (a teacher, a student) and its model spec."""
        ...

    def artifact_path(self, step: str, stem: str, suffix: str) -> Path:
        """``artifacts/STEM.SUFFIX``, never another step's file."""
        ...

    def evaluate(
        self,
        artifact: Artifact,
        split: Any,
        reference: list[Any] | None = None,
        score: bool = True,
    ) -> Any:
        """THE evaluation of a split: ``artifact`` run in its runtime on ``split`` (a
        ``sources.data.Split``), scored by the task; ``.outputs``, ``.metrics`` (empty when
        ``score`` is False)."""
        ...

    def time_side_by_side(self, artifacts: dict[str, Artifact], what: str) -> Any:
        """Candidate files timed side by side at batch 1 under the run's timing guard:
        ``.ms`` (median per candidate), ``.timed_between``."""
        ...
