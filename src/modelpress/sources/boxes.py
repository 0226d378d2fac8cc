"""Box arithmetic for detection data and predictions, in numpy: conversions, IoU, letterboxing
(NMS: ``tasks/detection/nms.py``). Data sources letterbox with it; the detection task decodes.

Boxes are ``xyxy`` unless a name says otherwise. Detections of one image are a ``(K, 6)`` float32
array ``x1, y1, x2, y2, score, class`` with coordinates normalised to [0, 1] of the model's input;
labels of one image are ``(M, 5)`` float32 ``class, x1, y1, x2, y2`` normalised the same way.
"""

from __future__ import annotations

import numpy as np

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


def letterbox_params(size: tuple[int, int], target: tuple[int, int]) -> tuple[float, int, int]:
    """(scale, pad left, pad top) that fit an image of ``size`` (H, W) into ``target`` (H, W)
    keeping its aspect ratio, centred, as Ultralytics' LetterBox does (grey 114 padding)."""
    h, w = size
    th, tw = target
    scale = min(th / h, tw / w)
    nh, nw = round(h * scale), round(w * scale)
    return scale, (tw - nw) // 2, (th - nh) // 2
