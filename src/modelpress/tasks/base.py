"""The interface every task implements: what its outputs and labels mean, from data to report.

A task is asked, never switched on. It owns:

    labels        which labels it takes (``check_labels``) and how training holds and batches
                  them (``label_tensor``, ``label_batch``): one int64 per sample for the class
                  tasks; detection will hold a variable-length list of boxes per sample
    outputs       whether a model's outputs fit it (``check_outputs``), and ``postprocess``
                  (identity for the class tasks, NMS for detection)
    measuring     ``metrics`` and the ``primary`` metric with its direction, ``verify`` of a
                  child's outputs against its parent's, and whether metrics are taken against
                  the baseline's outputs rather than labels (``metrics_against_baseline``)
    training      ``loss`` and ``kd_loss`` (distillation), the ``output_layers`` pruning keeps
    deployment    for cascades: the exit rule (``cascade_exit``), the ``cascade_scores`` a stage is
                  calibrated on, its ``decisions`` and ``confidence``, ``decision_metrics``
    reporting     ``verified_by`` (the column the report shows) and ``plots`` it has numbers for

``outputs`` everywhere are the raw outputs a runtime returns, (N, ...) per sample; ``metrics``,
``verify`` and ``confidence`` postprocess them themselves, so callers never need to.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from modelpress.errors import DataSourceError, StepError
from modelpress.evaluate.compare import compare_outputs
from modelpress.evaluate.metrics import higher_is_better, worse_by

if TYPE_CHECKING:
    import torch
    from torch import nn

    from modelpress.sources.data import Dataset

# What a runtime returns for a split: every output of the model, in order, (N, ...) each; a bare
# array stands for a model's only output.
Outputs = list[np.ndarray] | np.ndarray

# (outputs, labels, inputs) -> scalar loss; what ``training.fit`` takes as ``loss_fn``.
LossFn = Callable[["torch.Tensor", Any, list["torch.Tensor"]], "torch.Tensor"]


class Thresholds(Protocol):
    """What verification is judged against (the recipe's ``evaluate.verify``)."""

    min_agreement: float
    min_cosine: float


class Task(ABC):
    name: ClassVar[str]
    primary: ClassVar[str]  # the metric it is judged by (a key of evaluate.metrics.METRICS)
    needs_labels: ClassVar[bool] = True
    # what ``verify`` judges a child by: a key of ``compare_outputs`` with a ``min_<key>``
    # threshold in ``evaluate.verify``
    verified_by: ClassVar[str] = "agreement"
    # metrics compare the outputs with the baseline's (no labels), not with labels
    metrics_against_baseline: ClassVar[bool] = False
    plots: ClassVar[tuple[str, ...]] = ()  # names of report/plots.py figures it has numbers for
    # names of the report sections it contributes (report/sections/tasks.py builds each)
    report_sections: ClassVar[tuple[str, ...]] = ()
    # its postprocess is real work done outside the graph (NMS): latency shows it apart
    times_postprocess: ClassVar[bool] = False
    # why INT8 keeps the graph's tail (after its last weighted ops) in float, or None to
    # quantize it like the rest (steps/float_tail.py finds the tail in each graph)
    float_tail: ClassVar[str | None] = None

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    # ------------------------------------------------------------------ settings
    # the attributes ``bind`` sets: what a measuring child needs to rebuild this run's task
    # from its name (sent as JSON data, never as pickled code)
    bound: ClassVar[tuple[str, ...]] = ()
    # the pydantic model of what a recipe may set under ``task:`` (None: no settings); a recipe
    # is validated against it before any work (core.task_registry.settings_model)
    settings: ClassVar[Any] = None

    def bind(self, settings: Any, data: Dataset) -> Task:
        """The task for one run, given the recipe's settings for it (a dict, or None) and the
        data (a task with settings returns a configured copy; the registered instance is never
        changed)."""
        return self

    def bound_settings(self) -> dict[str, Any]:
        """The values ``bind`` set, as plain JSON data (``with_bound`` reads them back)."""
        return {k: getattr(self, k) for k in self.bound}

    def with_bound(self, settings: dict[str, Any]) -> Task:
        """A copy of the registered task with ``bound_settings`` applied (only the names in
        ``bound``; JSON's lists back to tuples)."""
        import copy

        task = copy.copy(self)
        for key in self.bound:
            if key in settings:
                value = settings[key]
                setattr(task, key, tuple(value) if isinstance(value, list) else value)
        return task

    # ------------------------------------------------------------------ primary metric
    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.primary)

    def worse_by(self, value: float, reference: float) -> float:
        """How much worse ``value`` of the primary metric is than ``reference`` (negative:
        better), whichever way the metric points."""
        return worse_by(self.primary, value, reference)

    # ------------------------------------------------------------------ labels
    def check_labels(self, data: Dataset) -> None:
        """Refuse data whose labels the task cannot score; warnings go to ``data.warnings``."""
        if self.needs_labels and data.validation.labels is None:
            raise DataSourceError(
                f"{data.source}: has no labels (y) but task is '{self.name}'; add y or use "
                "task: fidelity"
            )

    def label_tensor(self, labels: np.ndarray) -> Any:
        """A split's labels as training holds them: (N,) int64."""
        import torch

        return torch.from_numpy(labels)

    def label_batch(self, held: Any, idx: torch.Tensor) -> Any:
        """The labels of the samples ``idx`` (a mini-batch) from what ``label_tensor`` held."""
        return held[idx]

    # ------------------------------------------------------------------ outputs
    def check_outputs(self, shapes: list[tuple[int, ...]], data: Dataset, source: str) -> None:
        """Refuse a model whose outputs (``shapes``, every output, batch first) do not fit the
        task or the data, with a message naming ``source`` and the fix. Default: any fit."""
        return None

    def postprocess(self, outputs: Outputs) -> np.ndarray:
        """Raw outputs (every output of the model, in order) → what metrics and verification
        compare: a class task reads its first output; detection will decode boxes and scores
        and run NMS here."""
        return outputs[0] if isinstance(outputs, list) else outputs

    # what ``timed_postprocess`` does, for the record (tasks with ``times_postprocess``)
    timed_postprocess_says: ClassVar[str] = ""

    def timed_postprocess(self, outputs: Outputs) -> Any:
        """The postprocess a deployed model runs on each batch, as latency times it."""
        return self.postprocess(outputs)

    # ------------------------------------------------------------------ measuring
    @abstractmethod
    def metrics(
        self, outputs: Outputs, labels: np.ndarray | None, reference: Outputs | None = None
    ) -> dict[str, Any]:
        """Metrics of ``outputs`` against ``labels`` (or against the ``reference`` model's
        outputs where ``metrics_against_baseline``); always ``samples``, and
        ``nonfinite_samples`` when rows hold NaN/Inf (counted, never averaged in)."""

    def verify(
        self,
        child: Outputs,
        parent: Outputs,
        thresholds: Thresholds,
        judge: bool = True,
    ) -> tuple[dict[str, Any], str | None]:
        """A child's outputs against its parent's: (the comparison, with what it is judged by and
        the threshold; why it is degraded, or None). Judged by ``verified_by`` against its
        ``min_`` threshold; non-finite outputs always fail. ``judge=False`` (a retrained model,
        meant to differ) reports without judging."""
        result: dict[str, Any] = dict(
            compare_outputs(self.postprocess(child), self.postprocess(parent))
        )
        if isinstance(child, list) and isinstance(parent, list) and len(child) > 1:
            # every output is compared, not only the one the task reads: a model's second
            # head (features, boxes) that a format broke is a verification failure too
            each = [compare_outputs(c, p) for c, p in zip(child, parent, strict=False)]
            result["outputs"] = [
                {k: c[k] for k in ("max_abs_diff", "cosine", "nonfinite_samples")} for c in each
            ]
            result["nonfinite_samples"] = max(c["nonfinite_samples"] for c in each)
        by = self.verified_by
        threshold = float(getattr(thresholds, f"min_{by}"))
        result["judged_by"], result["threshold"] = (by, threshold) if judge else (None, None)
        value = float(result[by])
        problems = []
        if judge and not value >= threshold:  # NaN fails too
            problems.append(f"{by} with the parent is {value:.3f} (< {threshold})")
        if result["nonfinite_samples"]:
            problems.append(f"{result['nonfinite_samples']} non-finite outputs")
        return result, "; ".join(problems) or None

    def chance(self, labels: np.ndarray | None, reference: Outputs | None = None) -> Chance | None:
        """What the primary metric reads on this data for a model that learned nothing (the
        validation ``labels``, or the ``reference`` model's outputs for a task measured against
        them), or None where the data gives no such level."""
        return None

    def collapse(
        self,
        metrics: dict[str, Any],
        parent: dict[str, Any] | None,
        chance: Chance | None = None,
        *,
        against_parent: bool = True,
    ) -> str | None:
        """Why an artifact with ``metrics`` has collapsed (its status is then ``collapsed``), or
        None: any non-finite output; its primary metric at ``chance``; or (``against_parent``)
        its primary metric keeping less than half of its ``parent``'s (metrics) gain over
        chance, where the parent was above chance itself: not for a new model (a distilled
        student, from a teacher it was never part of). The reason gives the figures: its
        metric, the parent's, chance."""
        key = self.primary
        value, theirs = metrics.get(key), (parent or {}).get(key)
        bad = metrics.get("nonfinite_samples")
        if bad:
            n = metrics.get("samples", bad)
            over = f" over the other {n - bad}" if value is not None else ""
            return (
                f"collapsed: {bad} of {n} validation samples give non-finite outputs (NaN/Inf); "
                + _figures(key, value, theirs, chance, over)
            )
        figures = _figures(key, value, theirs, chance)
        if chance is None or value is None:
            return None
        if chance.reached(value):
            return f"collapsed: {key} at chance level; {figures}"
        if not against_parent or theirs is None or chance.reached(theirs):
            return None  # a parent at chance itself: nothing to fall from
        kept = self.worse_by(chance.value, value)  # its gain over chance, either direction
        if kept < COLLAPSE_KEEPS * self.worse_by(chance.value, theirs):
            return (
                f"collapsed: {key} keeps under {COLLAPSE_KEEPS:.0%} of its parent's gain over "
                f"chance; {figures}"
            )
        return None

    # ------------------------------------------------------------------ training
    def train_outputs(self, out: Any) -> Any:
        """What the training loss gets of a forward's output: the first tensor for a task that
        reads one output; a task that reads several returns them all."""
        from modelpress.sources.models import first_tensor

        return first_tensor(out)

    def loss(self, label_smoothing: float = 0.0) -> LossFn:
        """The training loss: ``(outputs, labels, inputs) -> scalar``."""
        raise StepError(f"task {self.name} has no labels to train on; training needs labels")

    def kd_loss(
        self,
        student: torch.Tensor,  # (B, K) logits
        teacher: torch.Tensor,  # (B, K) logits
        labels: Any,  # a batch of what label_batch returns
        *,
        temperature: float,
        hard_weight: float,
        soft_weight: float,
        standardize: bool = False,
    ) -> torch.Tensor:
        """Distillation loss: ``hard_weight`` · the label loss + ``soft_weight`` · T² · the
        teacher term."""
        raise StepError(f"task {self.name} has no labels to distill on; distillation needs labels")

    def output_layers(
        self, model: nn.Module, forward_order: list[str], num_classes: int | None
    ) -> set[str]:
        """Names of the modules whose outputs are the task's outputs: pruning keeps their
        widths. ``forward_order``: the model's Linear/Conv modules in the order one forward ran
        them. The last of them is the head of nearly every classifier or encoder; with
        ``num_classes`` known, any Linear of that width is one too (auxiliary or several heads).
        """
        from torch import nn

        heads = set(forward_order[-1:])
        if num_classes is not None:
            heads |= {
                name
                for name, module in model.named_modules()
                if isinstance(module, nn.Linear) and module.out_features == num_classes
            }
        return heads

    # ------------------------------------------------------------------ deployment
    # How a cascade's early stages exit on this task's answers (the rules are in
    # deploy/exits.py): "thresholds", one probability per item, exiting negative below one
    # threshold and positive at or above another; "confidence", exiting with the answer
    # (``decisions``) where ``confidence`` reaches a threshold. None: the task runs in no cascade.
    cascade_exit: ClassVar[str | None] = None

    def cascade_scores(self, outputs: Outputs) -> np.ndarray:
        """What a cascade stage is temperature-scaled on, on the logit scale: (N,) for a task
        answering with one probability per item, (N, K) for one per class. Scaled by a
        temperature T, the scores are outputs again: ``decisions`` and ``confidence`` read them."""
        raise StepError(f"task {self.name} runs in no cascade (it gives no per-item scores)")

    def decisions(self, outputs: Outputs) -> np.ndarray:
        """(N,) int64 the task's answer for each sample (a cascade's last stage decides so)."""
        raise StepError(f"task {self.name} gives no per-sample answer, which a cascade decides by")

    def confidence(self, outputs: Outputs) -> np.ndarray:
        """(N,) how sure the model is of each sample's answer, in [0, 1], for cascades."""
        raise StepError(
            f"task {self.name} gives no per-sample confidence, which a cascade needs to decide"
        )

    def decision_metrics(
        self, labels: np.ndarray, probs: np.ndarray, decisions: np.ndarray
    ) -> dict[str, Any]:
        """The metrics of answers already given (a cascade's, where items exit at different
        stages): ``probs`` the probabilities they came from ((N,) or (N, K)), ``decisions`` the
        (N,) answers. AUC (None where it does not exist), F1, precision, recall, accuracy."""
        raise StepError(f"task {self.name} has no metrics of decisions; a cascade needs them")


# An artifact whose primary metric keeps less than this share of its parent's gain over chance
# has collapsed (a pruned model at 0.36 top-1 from a parent at 0.96, chance 0.11).
COLLAPSE_KEEPS = 0.5
# At most this many binomial standard errors above chance still count as chance: a model that
# learned nothing lands within 3 of them of chance in 99.9 % of validation splits (one-sided).
CHANCE_SIGMAS = 3.0
# ...and at least this share of the way from chance to a perfect score, so a large split does
# not make a model that is barely above chance count as having learned.
CHANCE_FLOOR = 0.05


@dataclass(frozen=True)
class Chance:
    """The primary metric of a model that learned nothing, on one data set: ``value``, and up
    to ``value + margin`` still reads as chance (the noise of a finite validation split)."""

    metric: str
    value: float
    margin: float
    how: str  # how ``value`` was found, for the notes

    @property
    def up_to(self) -> float:
        return self.value + self.margin

    def reached(self, value: float | None) -> bool:
        """Whether ``value`` is at chance (NaN and None are: nothing was learned there)."""
        return value is None or not value > self.up_to

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "up_to": self.up_to, "how": self.how}

    def says(self) -> str:
        return f"chance {self.value:.4f} ({self.how}; up to {self.up_to:.4f} counts as chance)"


def chance_margin(value: float, best: float, sigma: float) -> float:
    """How far above chance ``value`` still counts as chance: CHANCE_SIGMAS standard errors of
    a model at chance on this split (``sigma``), and at least CHANCE_FLOOR of the way to
    ``best`` (the metric's perfect score)."""
    return max(CHANCE_SIGMAS * sigma, CHANCE_FLOOR * (best - value))


def _figures(key: str, value: Any, parent: Any, chance: Chance | None, over: str = "") -> str:
    """The numbers a collapse note gives: "top1 0.1028, its parent's 0.9583, chance 0.1111
    (…)"."""
    parts = [f"{key} {value:.4f}{over}" if value is not None else f"{key} not measured"]
    if parent is not None:
        parts.append(f"its parent's {parent:.4f}")
    if chance is not None:
        parts.append(chance.says())
    return ", ".join(parts)


def counted(outputs: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """({samples, nonfinite_samples when any}, (N,) mask of rows free of NaN/Inf)."""
    finite = np.isfinite(outputs.reshape(len(outputs), -1)).all(axis=1)
    out: dict[str, Any] = {"samples": len(outputs)}
    if not finite.all():
        out["nonfinite_samples"] = int((~finite).sum())
    return out, finite


def output_width(shape: tuple[int, ...]) -> int:
    """Values per sample of an output of ``shape`` (batch first)."""
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1
