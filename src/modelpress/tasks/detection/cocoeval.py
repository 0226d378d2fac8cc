"""Detection metrics by COCO's rules, computed by faster-coco-eval (a maintained C++ COCOeval,
numpy only, the same numbers as pycocotools; a test checks both on one case).

mAP50-95 is COCO's AP averaged over IoU 0.50:0.05:0.95 and over the classes that have ground
truth; precision and recall are taken at the confidence of best F1 (macro over classes), as
Ultralytics' validator reports them. Boxes go in as pixels of the model input (so COCO's area
ranges mean what they say); the score cap per image is ``max_det``, not COCO's 100.
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any

import numpy as np


def _coco(
    images: int, size: tuple[int, int], classes: int, annotations: list[dict[str, Any]]
) -> dict[str, Any]:
    h, w = size
    return {
        "images": [{"id": i, "height": h, "width": w} for i in range(images)],
        "categories": [{"id": c, "name": str(c)} for c in range(classes)],
        "annotations": annotations,
    }


def _to_pixels(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(K, 4) normalised xyxy → (K, 4) pixel xywh (COCO's box)."""
    h, w = size
    b = boxes.astype(np.float64) * np.array([w, h, w, h])
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def coco_metrics(
    detections: list[np.ndarray],
    labels: list[np.ndarray],
    *,
    num_classes: int,
    size: tuple[int, int],
    max_det: int = 300,
) -> dict[str, Any]:
    """``map50_95``, ``map50``, ``precision``, ``recall`` and ``per_class_ap`` (AP50-95 per
    class id, None for a class with no ground truth) of one split.

    ``detections``: per image (K, 6) ``x1 y1 x2 y2 score class`` normalised; ``labels``: per
    image (M, 5) ``class x1 y1 x2 y2`` normalised."""
    from faster_coco_eval import COCO, COCOeval_faster

    gt_anns, dt_anns = [], []
    for i, lab in enumerate(labels):
        for cls, box in zip(lab[:, 0], _to_pixels(lab[:, 1:5], size), strict=True):
            gt_anns.append(
                {
                    "id": len(gt_anns) + 1,
                    "image_id": i,
                    "category_id": int(cls),
                    "bbox": box.tolist(),
                    "area": float(box[2] * box[3]),
                    "iscrowd": 0,
                }
            )
    for i, det in enumerate(detections):
        for row, box in zip(det, _to_pixels(det[:, :4], size), strict=True):
            dt_anns.append(
                {
                    "id": len(dt_anns) + 1,
                    "image_id": i,
                    "category_id": int(row[5]),
                    "bbox": box.tolist(),
                    "score": float(row[4]),
                    "area": float(box[2] * box[3]),
                }
            )
    empty = {"map50_95": 0.0, "map50": 0.0, "precision": 0.0, "recall": 0.0}
    if not gt_anns:
        return empty | {"per_class_ap": [None] * num_classes, "detections": len(dt_anns)}
    images = len(labels)
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet:
        gt = COCO(_coco(images, size, num_classes, gt_anns))
        if not dt_anns:
            with_gt = {int(a["category_id"]) for a in gt_anns}
            per_class = [0.0 if c in with_gt else None for c in range(num_classes)]
            return empty | {"per_class_ap": per_class, "detections": 0}
        dt = gt.loadRes(dt_anns)
        ev = COCOeval_faster(gt, dt, iouType="bbox", print_function=lambda *a, **k: None)
        ev.params.maxDets = [1, 10, max_det]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        ext = ev.extended_metrics
    # precision: (T IoUs, R recall points, K classes, A areas, M max-dets); -1 where no ground truth
    precision = ev.eval["precision"][:, :, :, 0, -1]
    per_class: list[float | None] = []
    for k in range(num_classes):
        p = precision[:, :, k]
        per_class.append(float(p[p > -1].mean()) if (p > -1).any() else None)
    ap50 = precision[0]
    valid = ap50 > -1
    return {
        "map50_95": float(ev.stats[0]),
        "map50": float(ap50[valid].mean()) if valid.any() else 0.0,
        "precision": _finite(ext.get("precision")),
        "recall": _finite(ext.get("recall")),
        "per_class_ap": per_class,
        "detections": len(dt_anns),
    }


def _finite(v: Any) -> float:
    return float(v) if v is not None and math.isfinite(float(v)) else 0.0
