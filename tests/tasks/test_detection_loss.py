"""Detection losses: task-aligned assignment on hand-placed predictions, the loss trains
zoo:yolo_nano on a few digits-detect images, and distillation refuses mismatched anchors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from modelpress.core.inputs import InputSpec
from modelpress.errors import StepError
from modelpress.sources.data import load_data
from modelpress.tasks import get_task
from modelpress.tasks.detection import Detection
from modelpress.tasks.detection.loss import assign, detection_kd_loss, detection_loss
from modelpress.zoo.yolo_nano import yolo_nano

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _boxes_at(centres: list[tuple[float, float]], side: float = 0.1) -> torch.Tensor:
    c = torch.tensor(centres, dtype=torch.float32)
    return torch.cat([c - side / 2, c + side / 2], dim=1)


# ---------------------------------------------------------------- assignment


def test_positives_are_the_predictions_centred_inside_the_box() -> None:
    centres = [(0.1, 0.1), (0.3, 0.2), (0.45, 0.45), (0.6, 0.1), (0.8, 0.8), (0.1, 0.7)]
    boxes = _boxes_at(centres)
    scores = torch.full((6, 2), 0.3)
    gt = torch.tensor([[1, 0.0, 0.0, 0.5, 0.5]])
    pos, match, iou = assign(boxes, scores, gt)
    assert pos.tolist() == [True, True, True, False, False, False]
    assert match[pos].tolist() == [0, 0, 0]
    assert (iou[pos] > 0).all() and (iou[~pos] == 0).all()


def test_a_prediction_inside_two_boxes_goes_to_the_one_it_overlaps_more() -> None:
    boxes = torch.tensor([[0.30, 0.30, 0.50, 0.50], [0.05, 0.05, 0.15, 0.15]])
    scores = torch.full((2, 3), 0.5)
    # box 0's centre (0.4, 0.4) lies in both; it overlaps the second far more
    gt = torch.tensor([[0, 0.0, 0.0, 0.6, 0.6], [2, 0.3, 0.3, 0.52, 0.52]])
    pos, match, _ = assign(boxes, scores, gt)
    assert pos.tolist() == [True, True]
    assert match.tolist() == [1, 0]


def test_a_box_no_centre_falls_in_takes_the_nearest_predictions() -> None:
    centres = [(0.1, 0.1), (0.5, 0.5), (0.85, 0.85), (0.9, 0.1), (0.3, 0.9), (0.7, 0.75)]
    boxes = _boxes_at(centres, side=0.02)
    scores = torch.full((6, 1), 0.2)
    gt = torch.tensor([[0, 0.93, 0.93, 0.97, 0.97]])  # small, in a corner: no centre inside
    pos, match, _ = assign(boxes, scores, gt)
    dist = [math.dist(c, (0.95, 0.95)) for c in centres]
    nearest = int(np.argmin(dist))
    assert pos[nearest]
    assert 1 <= int(pos.sum()) <= 3  # the few nearest (3 here), never the far ones
    assert max(d for d, p in zip(dist, pos.tolist(), strict=True) if p) < min(
        d for d, p in zip(dist, pos.tolist(), strict=True) if not p
    )
    assert (match[pos] == 0).all()


def test_an_image_without_boxes_has_no_positives() -> None:
    boxes = _boxes_at([(0.2, 0.2), (0.5, 0.5)])
    pos, _, iou = assign(boxes, torch.full((2, 3), 0.9), torch.zeros((0, 5)))
    assert not pos.any() and (iou == 0).all()
    # its loss is the scores' BCE towards 0 alone, finite and positive
    loss = detection_loss(boxes[None], torch.full((1, 2, 3), 0.9), [torch.zeros((0, 5))])
    assert math.isfinite(float(loss)) and float(loss) > 0


# ---------------------------------------------------------------- training


def _digits_detect(samples: int) -> tuple[Detection, np.ndarray, list[torch.Tensor]]:
    data = load_data(
        "builtin:digits-detect",
        input_specs=[InputSpec("images", (1, 3, 64, 64), "float32")],
        max_samples=samples,
    )
    task = get_task("detection").bind(None, data)
    return task, data.train.inputs[0], task.label_tensor(data.train.labels)


def test_the_loss_is_finite_and_falls_when_yolo_nano_trains() -> None:
    task, x, labels = _digits_detect(12)
    x, labels = torch.from_numpy(x[:8]), labels[:8]
    assert len(x) == 8 and sum(len(b) for b in labels) >= 8
    torch.manual_seed(0)
    model = yolo_nano(num_classes=10, width_mult=0.25)
    loss_fn = task.loss()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(30):
        loss = loss_fn(model(x), labels, x)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses


def test_the_loss_reads_the_yolov8_layout_as_the_modelpress_one() -> None:
    task, x, labels = _digits_detect(10)
    x, labels = torch.from_numpy(x[:4]), labels[:4]
    torch.manual_seed(0)
    ours = yolo_nano(num_classes=10, width_mult=0.25)
    v8 = yolo_nano(num_classes=10, width_mult=0.25, layout="yolov8")
    v8.load_state_dict(ours.state_dict())
    a, b = task.loss()(ours(x), labels), task.loss()(v8(x), labels)
    assert float(a) == pytest.approx(float(b), rel=1e-4)


# ---------------------------------------------------------------- distillation


def test_distillation_refuses_students_predicting_at_other_anchors() -> None:
    task, x, labels = _digits_detect(10)
    x64 = torch.from_numpy(x[:2])
    x128 = torch.nn.functional.interpolate(x64, size=(128, 128))
    torch.manual_seed(0)
    model = yolo_nano(num_classes=10, width_mult=0.25)
    student, teacher = model(x64), model(x128)  # 84 anchors against 336
    with pytest.raises(StepError) as err:
        detection_kd_loss(task, student, teacher, labels[:2], hard_weight=1.0, soft_weight=1.0)
    msg = str(err.value)
    assert "(2, 84, 10)" in msg and "(2, 336, 10)" in msg and "same anchors" in msg
    same = detection_kd_loss(task, student, model(x64), labels[:2], hard_weight=1, soft_weight=1)
    hard = detection_kd_loss(task, student, model(x64), labels[:2], hard_weight=1, soft_weight=0)
    assert torch.isfinite(same) and float(same) > float(hard) > 0
