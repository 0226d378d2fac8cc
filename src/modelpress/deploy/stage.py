"""One stage of a cascade: a deployed file in its runtime, read through the cascade's Task.

The runtime's outputs become scores by the Task (``Task.cascade_scores``: a binary stage's
log-odds of the positive class, a classifier's K logits); divided by the stage's temperature
they are outputs again, calibrated, and the Task reads its answers (``decisions``) and how sure
it is of them (``confidence``) from those. An early stage's certificate (or its bin's) says which
items exit; the last stage answers for every item left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.deploy.certify import TOP_CONFIDENCE
from modelpress.deploy.routing import bucket_scores, route

if TYPE_CHECKING:
    from modelpress.tasks.base import Task


@dataclass
class Stage:
    name: str
    file: str  # the stage's file in the bundle
    temperature: float
    calibration: dict[str, Any]  # the temperature fit (NLL, ECE and reliability before/after)
    certificate: dict[str, Any] | None = None  # None: the last stage decides everything left
    runtime: Any = field(default=None, repr=False)
    buckets: dict[str, Any] | None = None  # {by, edges, certificates}: one certificate per bin
    task: Task | None = field(default=None, repr=False)  # the cascade's task, which reads outputs
    flip: bool = False  # the positive class is the model's class 0: one score per item negated

    def scores(self, inputs: list[np.ndarray], batch: int = 256) -> np.ndarray:
        """The Task's cascade scores of the stage's outputs: (N,) or (N, K), logit scale."""
        z = self._task.cascade_scores(self.runtime.predict_all(inputs, batch))
        return -z if self.flip else z

    def probabilities(self, inputs: list[np.ndarray], batch: int = 256) -> np.ndarray:
        from modelpress.deploy.calibration import calibrated_probs

        return calibrated_probs(self.scores(inputs, batch), self.temperature)

    def decide(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(calibrated probabilities, ``route``) of the stage on ``inputs``."""
        from modelpress.deploy.calibration import calibrated_probs

        z = self.scores(inputs)
        probs = calibrated_probs(z, self.temperature)
        return probs, self.route(probs, inputs, z)

    def answers(self, scores: np.ndarray) -> np.ndarray:
        """(N,) the Task's answer for each item from the stage's ``scores``, temperature-scaled:
        what the last stage decides, and a stage alone."""
        return self._task.decisions(_outputs(scores / self.temperature))

    def route(
        self, probs: np.ndarray, inputs: list[np.ndarray], scores: np.ndarray | None = None
    ) -> np.ndarray:
        """(N,) −1 defer, else the decision (0/1, or the class): an early stage's by its
        certificate (a confidence exit reads the Task's ``confidence`` of the ``scores``), the
        last stage's the Task's answer (``scores`` needed there)."""
        if self.certificate is None:
            if scores is None:
                raise ValueError(f"stage {self.name} decides from its scores; pass them")
            return self.answers(scores)
        sure = None
        if scores is not None and self.certificate.get("kind") == TOP_CONFIDENCE:
            sure = self._task.confidence(_outputs(scores / self.temperature))
        score = None
        if self.buckets is not None:
            score = bucket_scores(self.buckets["by"], probs, inputs)
        return route(probs, self.certificate, self.buckets, score, sure)

    @property
    def _task(self) -> Task:
        if self.task is None:
            raise ValueError(f"stage {self.name} has no task to read its outputs")
        return self.task


def _outputs(scores: np.ndarray) -> np.ndarray:
    """Scores as a head's outputs: one logit per item (N, 1), or K (N, K)."""
    return scores[:, None] if scores.ndim == 1 else scores


@dataclass
class Routed:
    """What the cascade did with a batch."""

    p: np.ndarray  # (N,) binary: final P(positive); classification: P(decided class)
    decision: np.ndarray  # (N,) 0 / 1, or the class
    stage: np.ndarray  # (N,) index of the stage that decided
    probs: np.ndarray | None = None  # classification: (N, K) final class probabilities
    meta_changed: int | None = None  # items where the meta-model overruled the last stage
