"""The detection task: COCO mAP on a hand-computed case and against pycocotools, NMS against a
plain-Python greedy reference, the output layouts, and verification / collapse / label checks."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pytest
import torch

from modelpress.core.recipe import VerifyConfig
from modelpress.errors import DataSourceError, ModelSourceError
from modelpress.sources.boxes import box_iou, letterbox_params
from modelpress.sources.data import Dataset, Split
from modelpress.tasks import get_task
from modelpress.tasks.detection import Detection
from modelpress.tasks.detection.cocoeval import coco_metrics
from modelpress.tasks.detection.layouts import decode, recognise
from modelpress.tasks.detection.nms import batched_nms, nms, select, select_yolov8
from modelpress.zoo.yolo_nano import yolo_nano

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- the hand-made mAP case
# Image 0: class 1 found exactly (0.9) plus a class-1 false positive (0.3).
# Image 1: class 0 found at IoU 0.625 (0.8); class 1 missed.
# Class 0: a true positive at IoU thresholds 0.50, 0.55, 0.60 only → AP50-95 3/10, AP50 1.
# Class 1: recall reaches 1/2 at precision 1, never more → 51 of COCO's 101 recall points: 51/101.
# mAP50-95 = (0.3 + 51/101) / 2 = 0.402475…; mAP50 = (1 + 51/101) / 2 = 0.752475…
HAND_DETS = [
    np.array([[0.5, 0.5, 0.8, 0.8, 0.9, 1], [0.05, 0.05, 0.25, 0.25, 0.3, 1]], np.float32),
    np.array([[0.2, 0.2, 0.6, 0.45, 0.8, 0]], np.float32),
]
HAND_LABELS = [
    np.array([[1, 0.5, 0.5, 0.8, 0.8]], np.float32),
    np.array([[0, 0.2, 0.2, 0.6, 0.6], [1, 0.05, 0.6, 0.3, 0.9]], np.float32),
]
SIZE = (64, 64)


def test_map_of_the_hand_made_case() -> None:
    m = coco_metrics(HAND_DETS, HAND_LABELS, num_classes=2, size=SIZE)
    assert m["map50_95"] == pytest.approx(0.402475, abs=1e-6)
    assert m["map50"] == pytest.approx(0.752475, abs=1e-6)
    assert m["map50_95"] == pytest.approx((0.3 + 51 / 101) / 2, abs=1e-12)
    assert m["per_class_ap"] == pytest.approx([0.3, 51 / 101])
    assert m["detections"] == 3


def test_map_with_no_detections_is_zero_and_classes_without_ground_truth_are_none() -> None:
    m = coco_metrics([np.zeros((0, 6), np.float32)] * 2, HAND_LABELS, num_classes=3, size=SIZE)
    assert m["map50_95"] == 0.0 and m["map50"] == 0.0
    assert m["per_class_ap"] == [0.0, 0.0, None]


def _pycocotools(
    dets: list[np.ndarray], labels: list[np.ndarray], nc: int, size: tuple[int, int]
) -> tuple[float, float]:
    """(AP50-95, AP50) of the same boxes by pycocotools, the reference implementation."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    h, w = size
    scale = np.array([w, h, w, h], np.float64)

    def xywh(b: np.ndarray) -> list[float]:
        p = b.astype(np.float64) * scale
        return [p[0], p[1], p[2] - p[0], p[3] - p[1]]

    gts, res = [], []
    for i, lab in enumerate(labels):
        for row in lab:
            box = xywh(row[1:5])
            gts.append(
                {
                    "id": len(gts) + 1,
                    "image_id": i,
                    "category_id": int(row[0]),
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    for i, det in enumerate(dets):
        for row in det:
            res.append(
                {
                    "image_id": i,
                    "category_id": int(row[5]),
                    "bbox": xywh(row[:4]),
                    "score": float(row[4]),
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": [{"id": i, "height": h, "width": w} for i in range(len(labels))],
            "categories": [{"id": c, "name": str(c)} for c in range(nc)],
            "annotations": gts,
        }
        gt.createIndex()
        dt = gt.loadRes(res)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.params.maxDets = [1, 10, 300]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # pycocotools' stats[0] asks for maxDets=100, absent from [1, 10, 300] (it reports -1):
    # AP50-95 is the mean of its precision table at the last max-dets, as stats[1] is at IoU 0.5
    p = ev.eval["precision"][:, :, :, 0, -1]  # (IoU, recall, class)
    return float(p[p > -1].mean()), float(ev.stats[1])


def _random_case(seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """~20 images, 3 classes: jittered detections of most boxes (some with the wrong class),
    random scores, and false positives."""
    rng = np.random.default_rng(seed)
    dets, labels = [], []
    for _ in range(20):
        m = int(rng.integers(0, 5))
        xy = rng.uniform(0, 0.7, size=(m, 2))
        wh = rng.uniform(0.08, 0.3, size=(m, 2))
        lab = np.concatenate([rng.integers(0, 3, (m, 1)), xy, xy + wh], axis=1)
        rows = []
        for cls, *box in lab:
            if rng.random() < 0.15:
                continue  # missed
            jitter = rng.normal(0, 0.02, size=4)
            c = cls if rng.random() > 0.1 else (cls + 1) % 3
            rows.append([*np.clip(np.array(box) + jitter, 0, 1), rng.random(), c])
        for _ in range(int(rng.integers(0, 3))):  # false positives
            x, y = rng.uniform(0, 0.8, 2)
            rows.append([x, y, x + 0.15, y + 0.1, rng.random() * 0.6, rng.integers(0, 3)])
        det = np.asarray(rows, np.float32).reshape(-1, 6)
        x1, x2 = np.minimum(det[:, 0], det[:, 2]), np.maximum(det[:, 0], det[:, 2])
        y1, y2 = np.minimum(det[:, 1], det[:, 3]), np.maximum(det[:, 1], det[:, 3])
        det[:, :4] = np.stack([x1, y1, x2, y2], 1)
        dets.append(det)
        labels.append(lab.astype(np.float32).reshape(-1, 5))
    return dets, labels


@pytest.mark.parametrize(
    "case",
    [
        pytest.param((HAND_DETS, HAND_LABELS, 2), id="hand"),
        pytest.param((*_random_case(0), 3), id="random0"),
        pytest.param((*_random_case(1), 3), id="random1"),
    ],
)
def test_map_equals_pycocotools(case: tuple[list[np.ndarray], list[np.ndarray], int]) -> None:
    dets, labels, nc = case
    ours = coco_metrics(dets, labels, num_classes=nc, size=SIZE)
    ap, ap50 = _pycocotools(dets, labels, nc, SIZE)
    assert 0.05 < ap < 0.95  # a case that tells implementations apart
    assert ours["map50_95"] == pytest.approx(ap, abs=1e-9)
    assert ours["map50"] == pytest.approx(ap50, abs=1e-9)


# ---------------------------------------------------------------- NMS against a reference


def _iou(a: list[float], b: list[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (
        max(a[2] - a[0], 0.0) * max(a[3] - a[1], 0.0)
        + max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)
        - inter
    )
    return inter / union if union > 0 else 0.0


def _reference_nms(
    boxes: np.ndarray, scores: np.ndarray, thr: float, limit: int | None = None
) -> list[int]:
    """Greedy NMS in plain Python: by score, highest first (ties in input order); keep a box
    unless a kept box overlaps it by more than ``thr``."""
    b = [[float(v) for v in row] for row in boxes]
    order = sorted(range(len(b)), key=lambda i: -float(scores[i]))  # sorted() is stable
    keep: list[int] = []
    for i in order:
        if all(_iou(b[i], b[k]) <= thr for k in keep):
            keep.append(i)
            if limit is not None and len(keep) == limit:
                break
    return keep


def _reference_batched(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, thr: float, limit: int | None
) -> list[int]:
    kept: list[int] = []
    for c in sorted(set(classes.tolist())):
        idx = [i for i in range(len(boxes)) if classes[i] == c]
        kept += [idx[j] for j in _reference_nms(boxes[idx], scores[idx], thr)]
    kept.sort(key=lambda i: (-float(scores[i]), i))
    return kept if limit is None else kept[:limit]


def _random_boxes(rng: np.random.Generator, n: int, size: tuple[float, float]) -> np.ndarray:
    xy = rng.uniform(0, 1, size=(n, 2))
    wh = rng.uniform(*size, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


CASES = {
    "sparse": dict(n=60, size=(0.05, 0.2), ties=False, dups=0),
    "dense": dict(n=200, size=(0.2, 0.5), ties=False, dups=0),
    "ties": dict(n=150, size=(0.1, 0.4), ties=True, dups=0),
    "identical": dict(n=80, size=(0.1, 0.4), ties=True, dups=40),
}


def _case(name: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    spec = CASES[name]
    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, spec["n"], spec["size"])
    if spec["dups"]:  # copies of earlier boxes, some with the same score as their original
        src = rng.integers(0, spec["n"] - spec["dups"], spec["dups"])
        boxes[-spec["dups"] :] = boxes[src]
    scores = rng.uniform(0, 1, spec["n"]).astype(np.float32)
    if spec["ties"]:
        scores = np.round(scores, 1).astype(np.float32)
    classes = rng.integers(0, 3, spec["n"])
    return boxes, scores, classes


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_nms_equals_greedy_reference(name: str, seed: int, thr: float) -> None:
    boxes, scores, classes = _case(name, seed)
    assert nms(boxes, scores, thr).tolist() == _reference_nms(boxes, scores, thr)
    assert nms(boxes, scores, thr, limit=5).tolist() == _reference_nms(boxes, scores, thr, 5)
    for limit in (None, 7):
        got = batched_nms(boxes, scores, classes, thr, limit).tolist()
        assert got == _reference_batched(boxes, scores, classes, thr, limit)


def test_nms_keeps_identical_boxes_once_and_the_first_of_tied_scores() -> None:
    boxes = np.array([[0.1, 0.1, 0.5, 0.5]] * 4, np.float32)
    scores = np.array([0.5, 0.9, 0.9, 0.1], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1]  # the first of the two 0.9s
    assert batched_nms(boxes, scores, np.array([0, 1, 1, 0]), 0.5).tolist() == [1, 0]


def test_iou_exactly_at_the_threshold_is_not_suppressed() -> None:
    # IoU 0.5 exactly (in float32 too): area 1 vs a half of it inside; greater than suppresses
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 0.5], [0, 0, 1, 0.6]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert box_iou(boxes[:1], boxes[1:2])[0, 0] == 0.5
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]  # 0.6 > 0.5 goes
    assert _reference_nms(boxes, scores, 0.5) == [0, 1]
    assert batched_nms(boxes, scores, np.zeros(3, int), 0.5).tolist() == [0, 1]


def test_nms_of_nothing_is_empty() -> None:
    empty = np.zeros((0, 4), np.float32)
    none = np.zeros(0, np.float32)
    assert nms(empty, none, 0.5).tolist() == []
    assert nms(empty, none, 0.5).dtype == np.int64
    assert batched_nms(empty, none, np.zeros(0, int), 0.5).tolist() == []
    boxes, scores, _ = _case("sparse", 0)
    assert nms(boxes, scores, 0.5, limit=0).tolist() == []


@pytest.mark.parametrize("limit", [None, 40])
def test_nms_of_more_than_2048_boxes_takes_the_row_path_and_agrees(limit: int | None) -> None:
    rng = np.random.default_rng(7)
    n = 2300  # > 2048: one IoU row at a time
    boxes = _random_boxes(rng, n, (0.2, 0.45))
    boxes[-200:] = boxes[:200]  # identical boxes
    scores = np.round(rng.uniform(0, 1, n), 2).astype(np.float32)  # many ties
    # the two best overlap by IoU 0.5 exactly: both kept on this path too
    boxes[:2], scores[:2] = [[0, 0, 1, 1], [0, 0, 1, 0.5]], [2.0, 1.5]
    got = nms(boxes, scores, 0.5, limit).tolist()
    assert got[:2] == [0, 1]
    assert got == _reference_nms(boxes, scores, 0.5, limit)
    assert 20 < len(got) < n // 4  # a case where suppression matters
    # the same boxes, class-aware: each class has fewer than 2048, so compare with one class
    classes = np.zeros(n, int)
    assert batched_nms(boxes, scores, classes, 0.5, limit).tolist() == got


def test_select_is_multi_label_then_class_aware_nms() -> None:
    boxes = np.array([[0, 0, 0.5, 0.5], [0.01, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]], np.float32)
    scores = np.array([[0.9, 0.6], [0.8, 0.05], [0.0, 0.3]], np.float32)
    det = select(boxes, scores, conf=0.1, iou=0.5, max_det=10)
    # box 0 as class 0 and class 1 (multi-label); box 1 suppressed by box 0 in class 0
    assert det[:, 4].tolist() == pytest.approx([0.9, 0.6, 0.3])
    assert det[:, 5].tolist() == [0, 1, 1]
    assert det.dtype == np.float32 and det.shape == (3, 6)
    assert select(boxes, scores, conf=0.1, iou=0.5, max_det=2).shape == (2, 6)
    assert select(boxes, scores, conf=0.95, iou=0.5, max_det=10).shape == (0, 6)


def test_letterbox_params_by_hand() -> None:
    assert letterbox_params((20, 40), (64, 64)) == (1.6, 0, 16)  # wide: bars top and bottom
    assert letterbox_params((40, 20), (64, 64)) == (1.6, 16, 0)  # tall: bars left and right
    scale, left, top = letterbox_params((20, 30), (64, 64))  # 64 × 42.67 → 64 × 43
    assert (scale, left, top) == (pytest.approx(64 / 30), 0, 10)
    assert letterbox_params((96, 96), (96, 96)) == (1.0, 0, 0)


# ---------------------------------------------------------------- layouts


def test_recognise_each_layout_with_and_without_the_class_count() -> None:
    modelpress = [(2, 84, 4), (2, 84, 10)]
    assert recognise(modelpress, 10) == "modelpress"
    assert recognise(modelpress, None) == "modelpress"
    assert recognise(modelpress, 3) is None  # scores of 10 classes for 3-class data
    yolov8 = [(2, 14, 84)]
    assert recognise(yolov8, 10) == "yolov8"
    assert recognise(yolov8, None) == "yolov8"  # more columns than rows
    assert recognise(yolov8, 3) is None
    assert recognise([(2, 84, 14)], None) is None  # transposed: rows outnumber columns
    for shapes in ([(2, 10)], [(2, 3, 84)], [(2, 4, 8, 8)], [], [(2, 84, 5), (2, 83, 10)]):
        assert recognise(shapes, 10) is None and recognise(shapes, None) is None


def _dataset(labels: np.ndarray, num_classes: int | None, hw: tuple[int, int] = (64, 64)) -> Any:
    split = Split([np.zeros((len(labels), 3, *hw), np.float32)], labels)
    return Dataset("yolo:data.yaml", split, split, split, ["images"], num_classes)


def _box_labels(n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = np.array([[0, 0.1, 0.1, 0.5, 0.5]], np.float32)
    return out


def test_outputs_matching_no_layout_name_the_shapes_and_both_layouts() -> None:
    data = _dataset(_box_labels(2), 10)
    task = get_task("detection")
    task.check_outputs([(8, 84, 4), (8, 84, 10)], data, "det.onnx")
    task.check_outputs([(8, 14, 84)], data, "det.onnx")
    with pytest.raises(ModelSourceError) as err:
        task.check_outputs([(8, 3, 84), (8, 7)], data, "det.onnx")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("det.onnx outputs (8, 3, 84), (8, 7),")
    assert "10 classes" in msg and "yolov8:" in msg and "modelpress:" in msg
    assert "detection.layout" in msg


def test_yolov8_decodes_to_the_modelpress_layout() -> None:
    rng = np.random.default_rng(0)
    b, n, nc, (h, w) = 2, 30, 5, (64, 96)
    xy = rng.uniform(0, 0.7, (b, n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.05, 0.3, (b, n, 2))], -1).astype(np.float32)
    scores = rng.uniform(0, 1, (b, n, nc)).astype(np.float32)
    px = boxes * np.array([w, h, w, h], np.float32)
    cxcywh = np.concatenate([(px[..., :2] + px[..., 2:]) / 2, px[..., 2:] - px[..., :2]], -1)
    raw = np.concatenate([cxcywh, scores], -1).transpose(0, 2, 1)  # (B, 4 + nc, N)
    assert recognise([raw.shape], nc) == "yolov8"
    got_boxes, got_scores = decode([raw], "yolov8", (h, w))
    np.testing.assert_allclose(got_boxes, boxes, atol=1e-6)
    np.testing.assert_array_equal(got_scores, scores)
    same_boxes, same_scores = decode([boxes, scores], "modelpress", (h, w))
    assert same_boxes is boxes and same_scores is scores


def _bound(data: Dataset, **settings: Any) -> Detection:
    return get_task("detection").bind(settings or None, data)


def _trained_like(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights everywhere (BatchNorm statistics too), so boxes and scores vary."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for name, buf in model.named_buffers():
            if name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
    return model.eval()


def test_yolo_nano_gives_the_same_detections_in_both_layouts() -> None:
    parent = _trained_like(yolo_nano(num_classes=3, width_mult=0.25), 0)
    v8 = yolo_nano(num_classes=3, width_mult=0.25, layout="yolov8").eval()
    v8.load_state_dict(parent.state_dict())
    x = torch.rand(3, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = [t.numpy() for t in parent(x)]
        theirs = v8(x).numpy()
    data = _dataset(_box_labels(3), 3, hw=(64, 96))
    task = _bound(data)  # layout recognised from the shapes
    a, b = task.postprocess(ours, conf=0.3), task.postprocess(theirs, conf=0.3)
    assert sum(map(len, a)) > 5  # the random weights give detections to compare
    for da, db in zip(a, b, strict=True):
        np.testing.assert_array_equal(da[:, 5], db[:, 5])
        np.testing.assert_allclose(da[:, :5], db[:, :5], atol=1e-5)
    forced = _bound(data, layout="yolov8").postprocess(theirs, conf=0.3)
    for da, db in zip(a, forced, strict=True):
        np.testing.assert_allclose(da, db, atol=1e-5)


# ---------------------------------------------------------------- verify, collapse, labels


def _outputs(seed: int = 0, b: int = 6, n: int = 40, nc: int = 3) -> list[np.ndarray]:
    """Modelpress-layout outputs with a few confident, well separated boxes per image."""
    rng = np.random.default_rng(seed)
    boxes = np.zeros((b, n, 4), np.float32)
    scores = rng.uniform(0, 0.1, (b, n, nc)).astype(np.float32)
    for i in range(b):
        cells = rng.permutation(16)[:n]
        x, y = (cells % 4) / 4, (cells // 4) / 4  # a 4 × 4 grid: no two shown boxes overlap
        boxes[i] = np.stack([x + 0.02, y + 0.02, x + 0.22, y + 0.22], 1)[np.arange(n) % 16]
        for j in rng.permutation(16)[:4]:
            scores[i, j, rng.integers(nc)] = rng.uniform(0.5, 0.95)
    return [boxes, scores]


def test_verify_identical_outputs_agree_fully() -> None:
    task = _bound(_dataset(_box_labels(6), 3))
    out = _outputs()
    result, problem = task.verify(out, out, VerifyConfig())
    assert problem is None
    assert result["agreement"] == 1.0
    assert result["matched"] == result["parent_detections"] == result["child_detections"] == 24
    assert result["score_abs_diff"] == 0.0


def test_verify_flags_a_child_whose_scores_collapsed() -> None:
    task = _bound(_dataset(_box_labels(6), 3))
    parent = _outputs()
    child = [parent[0], parent[1] * 0.01]
    result, problem = task.verify(child, parent, VerifyConfig())
    assert problem is not None and "collapsed" in problem
    assert result["child_detections"] == 0 and result["agreement"] == 0.0


def test_verify_tolerates_boxes_shifted_a_little() -> None:
    task = _bound(_dataset(_box_labels(6), 3))
    parent = _outputs()
    child = [parent[0] + np.float32(0.01), parent[1] * np.float32(0.97)]
    result, problem = task.verify(child, parent, VerifyConfig())
    assert problem is None
    assert result["agreement"] >= 0.95
    assert 0 < result["score_abs_diff"] < 0.05
    # moved by more than half a box (IoU 0.08 with its own and its neighbour's): no match
    far = [parent[0] + np.float32(0.125), parent[1]]
    result, problem = task.verify(far, parent, VerifyConfig())
    assert result["agreement"] < 0.5 and "agreement" in problem


def test_collapse_when_map_is_under_half_the_parents() -> None:
    task = _bound(_dataset(_box_labels(6), 3))
    msg = task.collapse({"map50_95": 0.1, "max_score": 0.9}, {"map50_95": 0.4})
    assert msg is not None and "under half" in msg and "0.100" in msg and "0.400" in msg
    assert task.collapse({"map50_95": 0.3, "max_score": 0.9}, {"map50_95": 0.4}) is None
    low = task.collapse({"map50_95": 0.3, "max_score": 1e-4}, {"map50_95": 0.4})
    assert low is not None and "below conf" in low
    assert task.collapse({"map50_95": 0.0}, {"map50_95": 0.0}) is None  # parent learnt nothing


def test_classification_labels_are_refused_naming_the_detection_sources() -> None:
    data = _dataset(np.array([0, 1, 2, 1], dtype=np.int64), 3)
    data.source = "builtin:digits"
    with pytest.raises(DataSourceError) as err:
        get_task("detection").check_labels(data)
    msg = str(err.value)
    assert msg.startswith("builtin:digits: task detection needs boxes")
    assert "one class per sample" in msg
    assert "yolo:" in msg and "coco:" in msg and "builtin:digits-detect" in msg
    get_task("detection").check_labels(_dataset(_box_labels(2), 3))  # boxes pass


def test_metrics_of_outputs_on_their_own_labels() -> None:
    """Postprocess + mAP: the parent's shown boxes as ground truth give mAP 1."""
    task = _bound(_dataset(_box_labels(6), 3))
    out = _outputs()
    shown = task.postprocess(out, conf=0.25)
    labels = np.empty(len(shown), dtype=object)
    for i, d in enumerate(shown):
        labels[i] = np.concatenate([d[:, 5:6], d[:, :4]], 1)
    m = task.metrics(out, labels)
    assert m["map50_95"] == pytest.approx(1.0) and m["samples"] == 6
    assert task.confidence(out).shape == (6,)
    assert (task.confidence(out) >= 0.5).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_select_is_batched_nms_over_its_candidates_in_both_layouts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xy = rng.random((60, 2)).astype(np.float32) * 0.8
    wh = 0.05 + rng.random((60, 2)).astype(np.float32) * 0.2
    raw = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.random((60, 4)).astype(np.float32) ** 3

    got = select(raw, scores, conf=0.05, iou=0.5, max_det=300)
    rows, cls = np.nonzero(scores > 0.05)
    keep = batched_nms(raw[rows], scores[rows, cls], cls, 0.5, 300)
    reference = np.concatenate(
        [raw[rows][keep], scores[rows, cls][keep, None], cls[keep, None].astype(np.float32)], 1
    )
    np.testing.assert_array_equal(got, reference)
    assert 5 < len(got) < len(rows)  # suppression happened

    # the same boxes as a yolov8 output: (4 + nc, N), cx cy w h in pixels of a 64×96 input
    h, w = 64, 96
    cxcywh = np.concatenate([(raw[:, :2] + raw[:, 2:]) / 2, raw[:, 2:] - raw[:, :2]], axis=1)
    v8 = np.concatenate([cxcywh * np.float32([w, h, w, h]), scores], axis=1).T.astype(np.float32)
    from_v8 = select_yolov8(v8, input_hw=(h, w), conf=0.05, iou=0.5, max_det=300)
    assert [d[5] for d in from_v8] == [d[5] for d in got]
    np.testing.assert_allclose(from_v8, got, atol=1e-5)


def test_select_caps_candidates_at_thirty_times_max_det_by_score() -> None:
    rng = np.random.default_rng(3)
    n = 400
    xy = rng.random((n, 2)).astype(np.float32) * 0.9
    boxes = np.concatenate([xy, xy + 0.01], axis=1)  # small and apart: nothing suppressed
    scores = np.linspace(1.0, 0.01, n, dtype=np.float32)[:, None]
    boxes[:150] = boxes[0]  # the 150 best are one box: NMS keeps one of them
    got = select(boxes, scores, conf=0.0, iou=0.5, max_det=5)  # cap: 30 · 5 = 150 candidates
    assert got.shape == (1, 6) and got[0, 4] == scores[0, 0]
    assert select(boxes, scores, conf=0.0, iou=0.5, max_det=6).shape == (6, 6)  # cap 180


def test_a_bound_detection_task_travels_as_json_data() -> None:
    """A measuring child gets the run's task as its name and bound settings (JSON), never
    pickled: rebuilt, it postprocesses exactly as the parent's."""
    import json

    bound = _bound(_dataset(_box_labels(2), 2, hw=(64, 96)), conf=0.2, iou=0.5, max_det=7)
    sent = json.loads(json.dumps({"name": bound.name, "bound": bound.bound_settings()}))
    rebuilt = get_task(sent["name"]).with_bound(sent["bound"])
    assert rebuilt is not get_task("detection")  # a copy: the registered task never changes
    assert (rebuilt.conf, rebuilt.iou, rebuilt.max_det) == (0.2, 0.5, 7)
    assert rebuilt.input_hw == bound.input_hw and isinstance(rebuilt.input_hw, tuple)
    outputs = [np.random.default_rng(0).random((2, 4 + 2, 126), dtype=np.float32)]
    for a, b in zip(rebuilt.postprocess(outputs), bound.postprocess(outputs), strict=True):
        np.testing.assert_array_equal(a, b)
