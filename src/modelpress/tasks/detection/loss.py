"""Training and distillation losses for detectors, on the decoded outputs of either layout.

The loss works from what any detector in a known layout outputs (boxes and sigmoid scores), so
it trains zoo:yolo_nano, fine-tunes a user's detector after pruning, and runs QAT, with no
knowledge of its anchors. Assignment is task-aligned (TOOD, Feng et al. 2021, as in YOLOv8):
for each ground-truth box, the candidates are the predictions whose centre lies inside it; their
alignment ``s^α · IoU^β`` (``s`` the score of the box's class) picks the ``TOP_K`` best as
positives, an anchor claimed by two boxes going to the one it overlaps more. A box with no
candidate takes the predictions whose centres lie nearest its own. Positives learn their box by
GIoU and their class score towards their IoU (IoU-aware targets, as VarifocalNet); everything
else learns a score of 0 (BCE).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from modelpress.errors import StepError

if TYPE_CHECKING:
    from modelpress.tasks.detection import Detection

TOP_K, ALPHA, BETA = 10, 1.0, 6.0
BOX_GAIN, CLS_GAIN = 5.0, 1.0
EPS = 1e-7


def decode_torch(task: Detection, outputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(boxes (B, N, 4) xyxy normalised, scores (B, N, nc) in (0, 1)) of either layout."""
    shapes = [tuple(o.shape) for o in outputs]
    layout = task.layout
    if layout is None:
        from modelpress.tasks.detection.layouts import recognise

        layout = recognise(shapes, task.num_classes)
    if layout == "modelpress":
        return outputs[0], outputs[1]
    if layout == "yolov8":
        h, w = task.input_hw or (1, 1)
        out = outputs[0].transpose(1, 2)
        cx, cy, bw, bh = out[..., 0] / w, out[..., 1] / h, out[..., 2] / w, out[..., 3] / h
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=-1)
        return boxes, out[..., 4:]
    raise StepError(f"detection outputs {shapes} match no layout the loss can train")


def box_iou_pairs(a: torch.Tensor, b: torch.Tensor, giou: bool = False) -> torch.Tensor:
    """IoU (or GIoU) of ``a[i]`` with ``b[i]``; (..., 4) → (...)."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    union = area_a + area_b - inter + EPS
    iou = inter / union
    if not giou:
        return iou
    hull = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).prod(-1)
    return iou - (hull - union) / (hull + EPS)


def box_iou_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 4) × (M, 4) → (N, M)."""
    return box_iou_pairs(a[:, None, :], b[None, :, :])


@torch.no_grad()
def assign(
    boxes: torch.Tensor, scores: torch.Tensor, gt: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image: ``boxes`` (N, 4), ``scores`` (N, nc), ``gt`` (M, 5) → (positive mask (N,),
    matched gt index (N,), IoU of each positive with its gt (N,))."""
    n, m = len(boxes), len(gt)
    pos = torch.zeros(n, dtype=torch.bool)
    match = torch.zeros(n, dtype=torch.long)
    if m == 0:
        return pos, match, torch.zeros(n)
    cls, g = gt[:, 0].long(), gt[:, 1:5]
    iou = box_iou_matrix(boxes, g)  # (N, M)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    inside = (
        (centres[:, None, 0] >= g[None, :, 0])
        & (centres[:, None, 0] <= g[None, :, 2])
        & (centres[:, None, 1] >= g[None, :, 1])
        & (centres[:, None, 1] <= g[None, :, 3])
    )  # (N, M)
    gt_centres = (g[:, :2] + g[:, 2:]) / 2
    dist = torch.cdist(centres, gt_centres)  # (N, M)
    near = torch.zeros_like(inside)
    near.scatter_(0, dist.topk(min(3, n), dim=0, largest=False).indices, True)
    lonely = ~inside.any(0)  # boxes no prediction's centre falls in: take the nearest
    inside = inside | (near & lonely[None, :])
    s = scores[:, cls].clamp(min=0)  # (N, M) score of each box's class
    align = (s**ALPHA) * (iou**BETA) * inside
    align = align + inside * 1e-9 / (1 + dist)  # ties (all IoU 0): nearer first
    k = min(TOP_K, n)
    top = align.topk(k, dim=0).indices  # (k, M)
    chosen = torch.zeros_like(inside)
    chosen.scatter_(0, top, True)
    chosen &= inside
    # an anchor chosen by several boxes goes to the one it overlaps most
    overlap = torch.where(chosen, iou, torch.full_like(iou, -1.0))
    best = overlap.argmax(1)
    pos = chosen.any(1)
    return pos, best, iou.gather(1, best[:, None]).squeeze(1) * pos


class DetectionLoss(nn.Module):
    """``(outputs, labels, inputs) -> loss`` for ``training.fit``: GIoU on positives plus BCE
    of every score against its IoU-aware target, both per positive."""

    def __init__(self, task: Detection) -> None:
        super().__init__()
        self.task = task

    def forward(self, outputs: Any, labels: list[torch.Tensor], inputs: Any = None) -> torch.Tensor:
        outs = list(outputs) if isinstance(outputs, list | tuple) else [outputs]
        boxes, scores = decode_torch(self.task, outs)
        return detection_loss(boxes, scores, labels)


def detection_loss(
    boxes: torch.Tensor, scores: torch.Tensor, labels: list[torch.Tensor]
) -> torch.Tensor:
    targets = torch.zeros_like(scores)
    box_terms, weights = [], []
    for i, gt in enumerate(labels):
        pos, match, iou = assign(boxes[i].detach(), scores[i].detach(), gt)
        if not pos.any():
            continue
        cls = gt[match[pos], 0].long()
        targets[i, pos.nonzero().squeeze(1), cls] = iou[pos].clamp(min=0.05)
        g = gt[match[pos], 1:5]
        box_terms.append(1.0 - box_iou_pairs(boxes[i, pos], g, giou=True))
        weights.append(iou[pos].clamp(min=0.05))
    norm = max(float(targets.sum()), 1.0)
    p = scores.clamp(EPS, 1 - EPS)
    cls_loss = F.binary_cross_entropy(p, targets, reduction="sum") / norm
    if box_terms:
        w = torch.cat(weights)
        box_loss = (torch.cat(box_terms) * w).sum() / norm
    else:
        box_loss = boxes.sum() * 0.0
    return CLS_GAIN * cls_loss + BOX_GAIN * box_loss


def detection_kd_loss(
    task: Detection,
    student: Any,
    teacher: Any,
    labels: list[torch.Tensor],
    *,
    hard_weight: float,
    soft_weight: float,
) -> torch.Tensor:
    """``hard_weight`` · the label loss + ``soft_weight`` · (BCE of the student's scores against
    the teacher's, per anchor and class, + GIoU of the student's boxes to the teacher's where the
    teacher is sure, weighted by its score). Student and teacher must predict at the same anchors
    (the same strides at the same input size)."""
    s_boxes, s_scores = decode_torch(task, _list(student))
    t_boxes, t_scores = decode_torch(task, _list(teacher))
    if s_scores.shape != t_scores.shape:
        raise StepError(
            f"detection distillation needs the student and teacher to predict at the same "
            f"anchors; student scores {tuple(s_scores.shape)}, teacher {tuple(t_scores.shape)}: "
            "give the student the teacher's strides and input size"
        )
    hard = detection_loss(s_boxes, s_scores, labels)
    t_scores, t_boxes = t_scores.detach(), t_boxes.detach()
    soft_cls = F.binary_cross_entropy(s_scores.clamp(EPS, 1 - EPS), t_scores, reduction="sum")
    sure = t_scores.max(-1).values  # (B, N)
    weight = torch.where(sure > 0.25, sure, torch.zeros_like(sure))
    norm = max(float(t_scores.sum()), 1.0)
    soft_box = ((1.0 - box_iou_pairs(s_boxes, t_boxes, giou=True)) * weight).sum()
    soft = (CLS_GAIN * soft_cls + BOX_GAIN * soft_box) / norm
    return hard_weight * hard + soft_weight * soft


def _list(x: Any) -> list[torch.Tensor]:
    return list(x) if isinstance(x, list | tuple) else [x]
