"""The output layouts a detector may have, recognised from its output shapes.

``yolov8``     one ``(B, 4 + nc, N)`` tensor: rows ``cx, cy, w, h`` in input pixels, then ``nc``
               class scores after sigmoid (what ``yolo export format=onnx`` writes)
``modelpress`` two tensors: ``boxes (B, N, 4)`` xyxy normalised to [0, 1] and
               ``scores (B, N, nc)`` after sigmoid (zoo:yolo_nano's default: boxes and scores
               never share a tensor, so never share an INT8 scale)
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from modelpress.sources.boxes import cxcywh_to_xyxy

Layout = Literal["yolov8", "modelpress"]
LAYOUTS: tuple[Layout, ...] = ("yolov8", "modelpress")
ACCEPTED = (
    "yolov8: one (B, 4 + nc, N) output (cx, cy, w, h in input pixels, then nc sigmoid scores); "
    "modelpress: boxes (B, N, 4) xyxy in [0, 1] and scores (B, N, nc)"
)


def recognise(shapes: list[tuple[int, ...]], nc: int | None) -> Layout | None:
    """The layout ``shapes`` (every output, batch first) fit, or None. With ``nc`` unknown the
    yolov8 layout is taken for a single 3-D output with more columns than rows."""
    if len(shapes) >= 2:
        boxes, scores = shapes[0], shapes[1]
        if (
            len(boxes) == 3
            and len(scores) == 3
            and boxes[2] == 4
            and boxes[1] == scores[1]
            and (nc is None or scores[2] == nc)
        ):
            return "modelpress"
    if len(shapes) >= 1:
        out = shapes[0]
        if len(out) == 3 and out[1] > 4:
            if nc is not None and out[1] == 4 + nc:
                return "yolov8"
            if nc is None and out[2] > out[1]:
                return "yolov8"
    return None


def decode(
    outputs: list[np.ndarray], layout: Layout, input_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs → (boxes (B, N, 4) xyxy normalised, scores (B, N, nc))."""
    if layout == "modelpress":
        return outputs[0], outputs[1]
    h, w = input_hw
    out = outputs[0].transpose(0, 2, 1)  # (B, N, 4 + nc)
    boxes = cxcywh_to_xyxy(out[..., :4]) / np.array([w, h, w, h], dtype=np.float32)
    return boxes.astype(np.float32), out[..., 4:]
