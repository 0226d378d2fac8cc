"""zoo:yolo_nano: output shapes in both layouts, torch.export, argument checks, output ranges."""

from __future__ import annotations

import pytest
import torch

from modelpress import zoo
from modelpress.errors import ModelSourceError
from modelpress.zoo.yolo_nano import STRIDES, yolo_nano

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _anchors(h: int, w: int) -> int:
    return sum((h // s) * (w // s) for s in STRIDES)


@pytest.mark.parametrize("hw", [(64, 64), (96, 96), (64, 96)], ids=["64x64", "96x96", "64x96"])
def test_output_shapes_in_both_layouts(hw: tuple[int, int]) -> None:
    h, w = hw
    n = _anchors(h, w)
    assert n == {(64, 64): 84, (96, 96): 189, (64, 96): 126}[hw]
    x = torch.rand(2, 3, h, w)
    model = yolo_nano(num_classes=5, width_mult=0.25).eval()
    with torch.no_grad():
        boxes, scores = model(x)
    assert boxes.shape == (2, n, 4) and scores.shape == (2, n, 5)
    v8 = yolo_nano(num_classes=5, width_mult=0.25, layout="yolov8").eval()
    with torch.no_grad():
        out = v8(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4 + 5, n)


def test_grey_input_and_the_zoo_entry() -> None:
    model = zoo.create("yolo_nano", num_classes=2, in_channels=1, width_mult=0.25).eval()
    with torch.no_grad():
        boxes, scores = model(torch.rand(1, 1, 64, 64))
    assert boxes.shape == (1, 84, 4) and scores.shape == (1, 84, 2)
    entry = zoo.get("yolo_nano")
    assert entry.task == "detection" and entry.default_input_shape == (3, 96, 96)


@pytest.mark.parametrize("layout", ["modelpress", "yolov8"])
def test_torch_export_matches_eager(layout: str) -> None:
    torch.manual_seed(0)
    model = yolo_nano(num_classes=3, width_mult=0.25, layout=layout).eval()
    x = torch.rand(2, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        expected = model(x)
        actual = exported.module()(x)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"in_channels": 0}, "in_channels"),
        ({"width_mult": 0}, "width_mult"),
        ({"act": "gelu"}, "act"),
        ({"layout": "yolov5"}, "layout"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, field: str) -> None:
    with pytest.raises(ModelSourceError) as err:
        yolo_nano(**kwargs)
    assert str(err.value).startswith(field) and "\n" not in str(err.value)


def test_boxes_lie_on_the_input_and_scores_are_probabilities() -> None:
    torch.manual_seed(0)
    model = yolo_nano(num_classes=4, width_mult=0.25, act="silu").eval()
    with torch.no_grad():
        boxes, scores = model(torch.rand(3, 3, 64, 96))
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2
    assert (centres >= 0).all() and (centres <= 1).all()
    assert (boxes[..., 2:] > boxes[..., :2]).all()  # x1 < x2, y1 < y2
    assert boxes.min() > -0.5 and boxes.max() < 1.5  # a fresh head: boxes about its cells
    assert (scores > 0).all() and (scores < 1).all()
    # the untrained head starts at the prior score 0.01 (focal-loss initialisation)
    assert scores.mean().item() == pytest.approx(0.01, rel=0.5)
