"""``detection``: boxes and class scores, judged by COCO mAP50-95 after NMS outside the graph.

Labels are one ``(M, 5)`` float32 array per image (``class, x1, y1, x2, y2`` normalised to the
model input), held in an object array of length N. A model's outputs are recognised as one of the
layouts in ``layouts.py``; ``postprocess`` decodes them and runs class-aware NMS per image (one
compiled pass, numba). Settings (``task: {name: detection, ...}`` in a recipe, ``Settings``
below) are bound to the task when a run starts (``bind``): the layout, and NMS's ``conf``,
``iou`` and ``max_det`` for evaluation.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from modelpress.errors import DataSourceError, ModelSourceError, StepError
from modelpress.sources.boxes import box_iou
from modelpress.tasks import register_task
from modelpress.tasks.base import Chance, LossFn, Outputs, Task, Thresholds
from modelpress.tasks.detection.layouts import ACCEPTED, LAYOUTS, Layout, decode, recognise

if TYPE_CHECKING:
    import torch
    from torch import nn

    from modelpress.sources.data import Dataset

# Detections compared between a child and its parent are those a deployed detector would show
# (Ultralytics' predict default), not the 0.001 floor mAP is computed from.
SHOW_CONF = 0.25


def _as_list(outputs: Outputs) -> list[np.ndarray]:
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


class Settings(BaseModel):
    """What a recipe may set under ``task:`` for detection: how outputs are read and filtered
    for evaluation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layout: Literal["yolov8", "modelpress"] | None = None  # None: recognised from the shapes
    conf: float = Field(0.001, ge=0, lt=1)  # score floor of the candidates mAP is computed from
    iou: float = Field(0.7, gt=0, le=1)  # NMS: suppress boxes overlapping a kept one by more
    max_det: int = Field(300, ge=1)  # detections kept per image


@register_task
class Detection(Task):
    name = "detection"
    settings = Settings
    primary = "map50_95"
    verified_by = "agreement"  # F1 of the child's detections matched to the parent's
    plots = ("map_vs_latency",)
    report_sections = ("detection_benchmark",)
    times_postprocess = True  # NMS runs outside the graph: latency shows model and end-to-end
    float_tail = (
        "the decode tail (head's last convolutions to the outputs) stays float: boxes in "
        "pixels and scores in [0, 1] under one INT8 scale round every score to zero"
    )

    def __init__(self) -> None:
        self.layout: Layout | None = None  # None: recognised from the output shapes
        self.conf, self.iou, self.max_det = 0.001, 0.7, 300
        self.num_classes: int | None = None
        self.input_hw: tuple[int, int] | None = None

    # ------------------------------------------------------------------ settings
    bound = ("layout", "conf", "iou", "max_det", "num_classes", "input_hw")

    def bind(self, settings: Any, data: Dataset) -> Detection:
        """A copy of the task for one run: the recipe's settings under ``task:`` (validated
        again: a record's settings come back as plain data), the data's classes and image
        size."""
        task = copy.copy(self)
        if settings:
            settings = Settings.model_validate(settings)
            task.layout = settings.layout
            task.conf, task.iou, task.max_det = settings.conf, settings.iou, settings.max_det
        task.num_classes = data.num_classes
        x = data.validation.inputs[0]
        task.input_hw = (int(x.shape[-2]), int(x.shape[-1])) if x.ndim == 4 else None
        return task

    # ------------------------------------------------------------------ labels
    def check_labels(self, data: Dataset) -> None:
        labels = data.validation.labels
        if labels is None or labels.dtype != object:
            raise DataSourceError(
                f"{data.source}: task detection needs boxes as labels, and this data has "
                f"{'no labels' if labels is None else 'one class per sample'}; use "
                "yolo:PATH/data.yaml, coco:ANNOTATIONS.json[:IMAGES] or builtin:digits-detect"
            )

    def label_tensor(self, labels: np.ndarray) -> list[torch.Tensor]:
        import torch

        return [torch.from_numpy(np.asarray(b, dtype=np.float32).reshape(-1, 5)) for b in labels]

    def label_batch(self, held: Any, idx: torch.Tensor) -> list[torch.Tensor]:
        return [held[int(i)] for i in idx]

    # ------------------------------------------------------------------ outputs
    def _layout(self, outputs: list[np.ndarray]) -> Layout:
        if self.layout is not None:
            return self.layout
        found = recognise([tuple(o.shape) for o in outputs], self.num_classes)
        if found is None:
            raise StepError(
                f"outputs of shapes {[tuple(o.shape) for o in outputs]} match no detection "
                f"layout; accepted: {ACCEPTED}"
            )
        return found

    def check_outputs(self, shapes: list[tuple[int, ...]], data: Dataset, source: str) -> None:
        nc = data.num_classes
        if self.layout is not None:
            return
        if recognise(shapes, nc) is None:
            seen = ", ".join(str(tuple(s)) for s in shapes)
            raise ModelSourceError(
                f"{source} outputs {seen}, which matches no detection layout for {nc} classes; "
                f"accepted: {ACCEPTED} (or set detection.layout in the recipe)"
            )

    def decode(self, outputs: Outputs) -> tuple[np.ndarray, np.ndarray]:
        """(boxes (N, A, 4) xyxy normalised, scores (N, A, nc))."""
        outs = _as_list(outputs)
        return decode(outs, self._layout(outs), self.input_hw or (1, 1))

    timed_postprocess_says = f"decode + class-aware NMS at conf {SHOW_CONF} (numba)"

    def timed_postprocess(self, outputs: Outputs) -> list[np.ndarray]:
        """What a deployed detector runs after the model: detections at the display threshold."""
        return self.postprocess(outputs, SHOW_CONF)

    def postprocess(self, outputs: Outputs, conf: float | None = None) -> list[np.ndarray]:
        """Per image, its detections ``(K, 6)``: ``x1 y1 x2 y2 score class`` after class-aware
        NMS (``conf``, default the task's evaluation floor). The yolov8 layout is read as it
        is: only the candidates' boxes are converted."""
        from modelpress.tasks.detection.nms import select, select_yolov8  # numba: loaded on use

        outs = _as_list(outputs)
        c = self.conf if conf is None else conf
        if self._layout(outs) == "yolov8":
            hw = self.input_hw or (1, 1)
            return [
                select_yolov8(raw, input_hw=hw, conf=c, iou=self.iou, max_det=self.max_det)
                for raw in outs[0]
            ]
        return [
            select(b, s, conf=c, iou=self.iou, max_det=self.max_det)
            for b, s in zip(*self.decode(outs), strict=True)
        ]

    # ------------------------------------------------------------------ measuring
    def metrics(
        self, outputs: Outputs, labels: np.ndarray | None, reference: Outputs | None = None
    ) -> dict[str, Any]:
        from modelpress.tasks.detection.cocoeval import coco_metrics

        if labels is None:
            raise ValueError("task 'detection' needs labels")
        boxes, scores = self.decode(outputs)
        finite = np.isfinite(boxes.reshape(len(boxes), -1)).all(1) & np.isfinite(
            scores.reshape(len(scores), -1)
        ).all(1)
        out: dict[str, Any] = {"samples": len(boxes)}
        if not finite.all():
            out["nonfinite_samples"] = int((~finite).sum())
        if not finite.any():  # every image NaN/Inf: nothing to score (the counts say so)
            return out
        from modelpress.tasks.detection.nms import select

        dets = [
            select(b, s, conf=self.conf, iou=self.iou, max_det=self.max_det)
            for b, s in zip(boxes[finite], scores[finite], strict=True)
        ]
        labs = [np.asarray(lab, dtype=np.float32).reshape(-1, 5) for lab in labels[finite]]
        nc = self.num_classes or int(scores.shape[-1])
        out |= coco_metrics(
            dets, labs, num_classes=nc, size=self.input_hw or (1, 1), max_det=self.max_det
        )
        out["max_score"] = float(scores[finite].max()) if scores[finite].size else 0.0
        return out

    def verify(
        self, child: Outputs, parent: Outputs, thresholds: Thresholds, judge: bool = True
    ) -> tuple[dict[str, Any], str | None]:
        """The child's shown detections (score ≥ 0.25) matched to the parent's, one to one,
        greedily by score (IoU ≥ 0.5, same class): ``agreement`` is their F1, ``score_abs_diff``
        the mean |Δscore| of matched pairs. A child whose scores never reach the display
        threshold where the parent's do has collapsed (the INT8 failure of one shared scale)."""
        kids, parents = self.postprocess(child, SHOW_CONF), self.postprocess(parent, SHOW_CONF)
        matched, diffs = 0, []
        for c, p in zip(kids, parents, strict=True):
            m, d = _match(c, p)
            matched += m
            diffs.extend(d)
        n_child, n_parent = sum(map(len, kids)), sum(map(len, parents))
        f1 = 2 * matched / (n_child + n_parent) if n_child + n_parent else 1.0
        result: dict[str, Any] = {
            "agreement": f1,
            "matched": matched,
            "child_detections": n_child,
            "parent_detections": n_parent,
            "score_abs_diff": float(np.mean(diffs)) if diffs else None,
            "show_conf": SHOW_CONF,
        }
        boxes, scores = self.decode(child)
        bad = ~(np.isfinite(boxes).all(axis=(1, 2)) & np.isfinite(scores).all(axis=(1, 2)))
        result["nonfinite_samples"] = int(bad.sum())
        threshold = float(thresholds.min_agreement)
        judged = ("agreement", threshold) if judge else (None, None)
        result["judged_by"], result["threshold"] = judged
        problems = []
        if n_parent and not n_child:
            problems.append(
                f"collapsed: no score reaches {SHOW_CONF} where the parent shows {n_parent} "
                "detections"
            )
        elif judge and not f1 >= threshold:
            problems.append(f"detection agreement with the parent is {f1:.3f} (< {threshold})")
        if result["nonfinite_samples"]:
            problems.append(f"{result['nonfinite_samples']} non-finite outputs")
        return result, "; ".join(problems) or None

    def collapse(
        self,
        metrics: dict[str, Any],
        parent: dict[str, Any] | None,
        chance: Chance | None = None,
        *,
        against_parent: bool = True,
    ) -> str | None:
        """Why an artifact's metrics say it has collapsed against its parent's, or None: any
        non-finite output (as every task), every score under ``conf``, or under half the
        parent's mAP50-95 (``against_parent``). No chance level: a detector that finds nothing
        scores 0, and so nearly does a weak real one, so it is judged against its parent only."""
        if metrics.get("nonfinite_samples"):
            return super().collapse(metrics, parent)
        mine, theirs = metrics.get(self.primary), (parent or {}).get(self.primary)
        if mine is None or theirs is None or theirs <= 0:
            return None
        if metrics.get("max_score", 1.0) < self.conf:
            return f"collapsed: every score is below conf {self.conf}"
        if against_parent and mine < 0.5 * theirs:
            return f"collapsed: mAP50-95 {mine:.3f} is under half the parent's {theirs:.3f}"
        return None

    # ------------------------------------------------------------------ training
    def train_outputs(self, out: Any) -> Any:
        """Every output of a forward: the loss needs boxes and scores."""
        from modelpress.sources.models import all_tensors

        return all_tensors(out)

    def loss(self, label_smoothing: float = 0.0) -> LossFn:
        from modelpress.tasks.detection.loss import DetectionLoss

        return DetectionLoss(self)

    def kd_loss(
        self,
        student: Any,
        teacher: Any,
        labels: Any,
        *,
        temperature: float,
        hard_weight: float,
        soft_weight: float,
        standardize: bool = False,
    ) -> torch.Tensor:
        from modelpress.tasks.detection.loss import detection_kd_loss

        return detection_kd_loss(
            self, student, teacher, labels, hard_weight=hard_weight, soft_weight=soft_weight
        )

    def output_layers(
        self, model: nn.Module, forward_order: list[str], num_classes: int | None
    ) -> set[str]:
        """The head's last convolutions (class scores, box regression): every Conv2d whose
        output feeds no other Conv2d of the forward, found as the convolutions of width nc, 4
        or 4·k (distribution-focal boxes), plus the last one run."""
        from torch import nn

        widths = {4, 64, 4 + (num_classes or 0)} | ({num_classes} if num_classes else set())
        heads = set(forward_order[-1:])
        for name, module in model.named_modules():
            if (
                isinstance(module, nn.Conv2d)
                and module.kernel_size == (1, 1)
                and module.out_channels in widths
                and name in forward_order
            ):
                heads.add(name)
        return heads

    def confidence(self, outputs: Outputs) -> np.ndarray:
        """The best class score anywhere in each image."""
        _, scores = self.decode(outputs)
        return scores.reshape(len(scores), -1).max(axis=1)


def _match(child: np.ndarray, parent: np.ndarray) -> tuple[int, list[float]]:
    """Greedy one-to-one matching of one image's detections (child by score, each to the
    unmatched parent detection of its class with the highest IoU ≥ 0.5)."""
    if not len(child) or not len(parent):
        return 0, []
    iou = box_iou(child[:, :4], parent[:, :4])
    iou[child[:, 5][:, None] != parent[:, 5][None, :]] = 0.0
    taken = np.zeros(len(parent), dtype=bool)
    diffs = []
    for i in np.argsort(-child[:, 4], kind="stable"):
        row = np.where(taken, 0.0, iou[i])
        j = int(np.argmax(row))
        if row[j] >= 0.5:
            taken[j] = True
            diffs.append(abs(float(child[i, 4] - parent[j, 4])))
    return len(diffs), diffs


__all__ = ["LAYOUTS", "Detection"]
