"""Non-maximum suppression for detection, compiled with numba.

NMS runs outside the graph after every forward, and at batch 1 a deployed detector sees tens of
candidates: in numpy that is some forty calls of about a microsecond each, as long as the model
itself on a small INT8 detector. One compiled pass does the whole of it (about 8 µs per image on
``builtin:digits-detect``, against 48 µs in numpy). Compiled once, cached beside this file.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _greedy(b: np.ndarray, s: np.ndarray, c: np.ndarray, iou: np.float32, limit: int) -> np.ndarray:
    """Class-aware greedy NMS over ``b`` (n, 4) float32 xyxy, ``s`` (n,) float32, ``c`` (n,)
    int64: visit by score (highest first, ties in input order), keep a box and suppress every
    later box of its class whose IoU with it is greater than ``iou`` (all in float32, as
    torchvision computes it). Returns the kept indices in score order, at most ``limit``."""
    n = len(s)
    if limit <= 0:  # numba does not check bounds: keep[] below must have room
        return np.empty(0, np.int64)
    order = np.argsort(-s, kind="mergesort")  # stable: ties in input order
    zero, tiny = np.float32(0.0), np.float32(1e-12)
    area = np.empty(n, np.float32)
    for i in range(n):
        area[i] = max(b[i, 2] - b[i, 0], zero) * max(b[i, 3] - b[i, 1], zero)
    alive = np.ones(n, np.bool_)
    keep = np.empty(min(n, limit), np.int64)
    k = 0
    for a in range(n):
        i = order[a]
        if not alive[i]:
            continue
        keep[k] = i
        k += 1
        if k == limit:
            break
        for q in range(a + 1, n):
            j = order[q]
            if not alive[j] or c[j] != c[i]:
                continue
            w = max(min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]), zero)
            h = max(min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]), zero)
            inter = w * h
            if inter / max(area[i] + area[j] - inter, tiny) > iou:
                alive[j] = False
    return keep[:k]


@njit(cache=True, nogil=True)
def _cap(b: np.ndarray, s: np.ndarray, c: np.ndarray, cap: int) -> tuple:
    """The ``cap`` best candidates, kept in input order (NMS is quadratic: Ultralytics'
    max_nms)."""
    if len(s) <= cap:
        return b, s, c
    top = np.sort(np.argsort(-s, kind="mergesort")[:cap])
    return b[top], s[top], c[top]


@njit(cache=True, nogil=True)
def _candidates_xyxy(boxes: np.ndarray, scores: np.ndarray, conf: np.float32, cap: int) -> tuple:
    """One image's (box, class) pairs scoring above ``conf`` (multi-label), in anchor then class
    order: ``boxes`` (N, 4) xyxy normalised, ``scores`` (N, nc)."""
    n, nc = scores.shape
    count = 0
    for i in range(n):
        for k in range(nc):
            count += scores[i, k] > conf
    b = np.empty((count, 4), np.float32)
    s, c = np.empty(count, np.float32), np.empty(count, np.int64)
    m = 0
    for i in range(n):
        for k in range(nc):
            if scores[i, k] > conf:
                for d in range(4):
                    b[m, d] = boxes[i, d]
                s[m], c[m] = scores[i, k], k
                m += 1
    return _cap(b, s, c, cap)


@njit(cache=True, nogil=True)
def _candidates_yolov8(
    raw: np.ndarray, w: np.float32, h: np.float32, conf: np.float32, cap: int
) -> tuple:
    """``_candidates_xyxy`` for the yolov8 layout's ``(4 + nc, N)`` (``cx cy w h`` in input
    pixels, then scores): only the candidates' boxes are converted."""
    nc, n = raw.shape[0] - 4, raw.shape[1]
    count = 0
    for k in range(nc):
        for i in range(n):
            count += raw[4 + k, i] > conf
    b = np.empty((count, 4), np.float32)
    s, c = np.empty(count, np.float32), np.empty(count, np.int64)
    m, two = 0, np.float32(2.0)
    for i in range(n):
        for k in range(nc):
            v = raw[4 + k, i]
            if v > conf:
                cx, cy, bw, bh = raw[0, i], raw[1, i], raw[2, i], raw[3, i]
                b[m, 0], b[m, 1] = (cx - bw / two) / w, (cy - bh / two) / h
                b[m, 2], b[m, 3] = (cx + bw / two) / w, (cy + bh / two) / h
                s[m], c[m] = v, k
                m += 1
    return _cap(b, s, c, cap)


@njit(cache=True, nogil=True)
def _detections(b: np.ndarray, s: np.ndarray, c: np.ndarray, iou: np.float32, max_det: int):
    """Class-aware NMS over the candidates → ``(K, 6)`` detections, by score."""
    keep = _greedy(b, s, c, iou, max_det)
    out = np.empty((len(keep), 6), np.float32)
    for r in range(len(keep)):
        j = keep[r]
        out[r, 0], out[r, 1], out[r, 2], out[r, 3] = b[j, 0], b[j, 1], b[j, 2], b[j, 3]
        out[r, 4], out[r, 5] = s[j], np.float32(c[j])
    return out


@njit(cache=True, nogil=True)
def _select_xyxy(boxes, scores, conf, iou, max_det):
    b, s, c = _candidates_xyxy(boxes, scores, conf, 30 * max_det)
    return _detections(b, s, c, iou, max_det)


@njit(cache=True, nogil=True)
def _select_yolov8(raw, w, h, conf, iou, max_det):
    b, s, c = _candidates_yolov8(raw, w, h, conf, 30 * max_det)
    return _detections(b, s, c, iou, max_det)


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, limit: int | None = None) -> np.ndarray:
    """Greedy NMS with torchvision's semantics: visit boxes by score (highest first, ties in
    input order), keep one and suppress every later box whose IoU with it is *greater than*
    ``iou``. Returns the kept indices in score order (the first ``limit`` of them)."""
    return batched_nms(boxes, scores, np.zeros(len(scores), np.int64), iou, limit)


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    iou: float,
    limit: int | None = None,
) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other (torchvision's
    ``batched_nms``); the kept indices, by score."""
    n = len(scores)
    cls = np.ascontiguousarray(classes, dtype=np.int64)
    return _greedy(
        _f32(boxes).reshape(n, 4), _f32(scores), cls, np.float32(iou), n if limit is None else limit
    )


def select(
    boxes: np.ndarray, scores: np.ndarray, *, conf: float, iou: float, max_det: int
) -> np.ndarray:
    """One image's raw candidates → its detections ``(K, 6)``.

    ``boxes`` (N, 4) xyxy normalised, ``scores`` (N, nc) per-class probabilities. Like
    Ultralytics' evaluation (multi-label): every (box, class) pair scoring above ``conf`` is a
    candidate (the ``30 · max_det`` best), then class-aware NMS, then the ``max_det`` best."""
    return _select_xyxy(_f32(boxes), _f32(scores), np.float32(conf), np.float32(iou), max_det)


def select_yolov8(
    raw: np.ndarray, *, input_hw: tuple[int, int], conf: float, iou: float, max_det: int
) -> np.ndarray:
    """``select`` straight from one image's yolov8-layout output ``(4 + nc, N)``: only the
    candidates' boxes are converted to xyxy normalised."""
    h, w = (np.float32(v) for v in input_hw)
    return _select_yolov8(_f32(raw), w, h, np.float32(conf), np.float32(iou), max_det)
