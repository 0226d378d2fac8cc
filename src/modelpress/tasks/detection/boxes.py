"""Box arithmetic for detection, in numpy: conversions, IoU, NMS, letterboxing.

Boxes are ``xyxy`` unless a name says otherwise. Detections of one image are a ``(K, 6)`` float32
array ``x1, y1, x2, y2, score, class`` with coordinates normalised to [0, 1] of the model's input;
labels of one image are ``(M, 5)`` float32 ``class, x1, y1, x2, y2`` normalised the same way.
"""

from __future__ import annotations

import numpy as np

NO_DETECTIONS = np.zeros((0, 6), dtype=np.float32)
NO_LABELS = np.zeros((0, 5), dtype=np.float32)


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    """(..., 4) centre, width, height → corners."""
    cx, cy, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def box_area(b: np.ndarray) -> np.ndarray:
    return np.maximum(b[..., 2] - b[..., 0], 0) * np.maximum(b[..., 3] - b[..., 1], 0)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, 4) × (B, 4) → (A, B) intersection over union (0 where both boxes are empty)."""
    # few numpy calls: at batch 1 NMS sees tens of boxes, and each call costs a microsecond
    a, b = a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
    w = np.minimum.outer(a[:, 2], b[:, 2]) - np.maximum.outer(a[:, 0], b[:, 0])
    h = np.minimum.outer(a[:, 3], b[:, 3]) - np.maximum.outer(a[:, 1], b[:, 1])
    inter = np.maximum(w, 0, out=w) * np.maximum(h, 0, out=h)
    union = np.add.outer(box_area(a), box_area(b)) - inter
    return inter / np.maximum(union, np.float32(1e-12))  # two empty boxes: 0


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, limit: int | None = None) -> np.ndarray:
    """Greedy NMS with torchvision's semantics: visit boxes by score (highest first, ties in
    input order), keep one and suppress every later box whose IoU with it is *greater than*
    ``iou``. Returns the kept indices in score order (the first ``limit`` of them)."""
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    n = len(order)
    limit = n if limit is None else limit
    keep: list[int] = []
    alive = np.ones(n, dtype=bool)
    if n <= 2048:  # one IoU matrix, then a cheap pass over its rows
        overlap = box_iou(boxes, boxes) > iou
        for i in range(n):
            if alive[i]:
                keep.append(i)
                if len(keep) == limit:
                    break
                alive &= ~overlap[i]
        return order[np.asarray(keep, dtype=np.int64)]
    areas = box_area(boxes)
    for i in range(n):  # many candidates: one row of IoU at a time
        if not alive[i]:
            continue
        keep.append(i)
        if len(keep) == limit:
            break
        rest = np.nonzero(alive[i + 1 :])[0] + i + 1
        if not len(rest):
            break
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
        alive[rest[overlap > iou]] = False
    return order[np.asarray(keep, dtype=np.int64)]


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    iou: float,
    limit: int | None = None,
) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other (torchvision's
    ``batched_nms``). Few boxes: one pass with the classes offset apart; many: class by class
    (small IoU matrices), merged by score."""
    if not len(boxes):
        return np.zeros(0, dtype=np.int64)
    if len(boxes) <= 512:  # one pass, each class moved to a region of its own (torchvision's)
        span = float(boxes.max() - boxes.min()) + 1.0
        return nms(boxes + (classes.astype(np.float32) * span)[:, None], scores, iou, limit)
    kept = []
    for c in np.unique(classes):
        idx = np.nonzero(classes == c)[0]
        kept.append(idx[nms(boxes[idx], scores[idx], iou, limit)])
    keep = np.concatenate(kept)
    # by score, highest first; ties in input order, as one pass over all boxes would give
    keep = keep[np.lexsort((keep, -scores[keep]))]
    return keep if limit is None else keep[:limit]


def select(
    boxes: np.ndarray, scores: np.ndarray, *, conf: float, iou: float, max_det: int
) -> np.ndarray:
    """One image's raw candidates → its detections ``(K, 6)``.

    ``boxes`` (N, 4) xyxy normalised, ``scores`` (N, nc) per-class probabilities. Like
    Ultralytics' evaluation (multi-label): every (box, class) pair scoring above ``conf`` is a
    candidate, then class-aware NMS, then the ``max_det`` best."""
    rows, cls = np.nonzero(scores > conf)
    if not len(rows):
        return NO_DETECTIONS
    s = scores[rows, cls]
    if len(s) > 30 * max_det:  # NMS is quadratic: cap the candidates as Ultralytics does (max_nms)
        top = np.argpartition(-s, 30 * max_det)[: 30 * max_det]
        rows, cls, s = rows[top], cls[top], s[top]
    if len(s) <= SMALL:
        return _select_small(boxes[rows], s, cls, iou, max_det)
    b = boxes[rows]
    keep = batched_nms(b, s, cls, iou, max_det)
    return np.concatenate(
        [b[keep], s[keep, None], cls[keep, None].astype(np.float32)], axis=1
    ).astype(np.float32)


SMALL = 512  # candidates for which one masked IoU matrix is cheapest


def _select_small(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float, max_det: int
) -> np.ndarray:
    """``select`` for a few candidates (a deployed detector at batch 1: tens), in as few numpy
    calls as possible: one IoU matrix masked to same-class pairs, then the greedy pass."""
    order = np.argsort(-scores, kind="stable")
    b, s, c = boxes[order].astype(np.float32, copy=False), scores[order], classes[order]
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    w = np.minimum.outer(x2, x2) - np.maximum.outer(x1, x1)
    h = np.minimum.outer(y2, y2) - np.maximum.outer(y1, y1)
    inter = np.maximum(w, 0, out=w) * np.maximum(h, 0, out=h)
    union = np.add.outer(area, area) - inter
    over = inter / np.maximum(union, np.float32(1e-12)) > iou
    over &= c[:, None] == c[None, :]  # class-aware: other classes never suppress
    keep: list[int] = []
    alive = np.ones(len(s), dtype=bool)
    for i in range(len(s)):
        if alive[i]:
            keep.append(i)
            if len(keep) == max_det:
                break
            alive &= ~over[i]
    k = np.asarray(keep, dtype=np.int64)
    out = np.empty((len(k), 6), dtype=np.float32)
    out[:, :4], out[:, 4], out[:, 5] = b[k], s[k], c[k]
    return out


def letterbox_params(size: tuple[int, int], target: tuple[int, int]) -> tuple[float, int, int]:
    """(scale, pad left, pad top) that fit an image of ``size`` (H, W) into ``target`` (H, W)
    keeping its aspect ratio, centred, as Ultralytics' LetterBox does (grey 114 padding)."""
    h, w = size
    th, tw = target
    scale = min(th / h, tw / w)
    nh, nw = round(h * scale), round(w * scale)
    return scale, (tw - nw) // 2, (th - nh) // 2
