"""Artifacts whose input is not the data's float NCHW: a camera's uint8 NHWC frame.

``io: uint8`` exports take ``(B, H, W, C)`` uint8 pixels and do the permute, the cast, the
/255 (and the recipe's ``normalize``, folded in) inside the graph, as phone camera pipelines
feed a model. Such an artifact carries ``input_transform``; ``runtime_for`` wraps its runtime
so every caller still hands it the data set's float NCHW batches, turned into the pixels a
camera would give (``to_pixels``): evaluation, benchmarks and verification need no change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from modelpress.runtimes.base import Runtime

UINT8_NHWC = "uint8_nhwc"


def pixel_specs(specs: list[Any]) -> list[Any]:
    """The float NCHW image input's spec as the uint8 NHWC input it becomes."""
    from modelpress.core.inputs import InputSpec

    first = specs[0]
    n, c, h, w = first.shape
    return [InputSpec(first.name, (n, h, w, c), "uint8"), *specs[1:]]


def camera_input(specs: list[Any]) -> bool:
    """Whether a deployed file's first input is a camera frame: (N, H, W, C) uint8, C 1 or 3
    (an ``io: uint8`` export, or any model made for raw pixels)."""
    first = specs[0] if specs else None
    return (
        first is not None
        and first.dtype == "uint8"
        and len(first.shape) == 4
        and first.shape[3] in (1, 3)
    )


def float_specs(specs: list[Any]) -> list[Any]:
    """``pixel_specs`` undone: the uint8 NHWC input as the float NCHW images the data gives."""
    from modelpress.core.inputs import InputSpec

    first = specs[0]
    n, h, w, c = first.shape
    return [InputSpec(first.name, (n, c, h, w)), *specs[1:]]


def to_pixels(inputs: list[np.ndarray], transform: dict[str, Any]) -> list[np.ndarray]:
    """The data's float NCHW images (normalised as the recipe says) → uint8 NHWC pixels."""
    x = inputs[0].astype(np.float32, copy=False)
    if transform.get("mean") is not None:
        shape = (1, -1, 1, 1)
        std = np.asarray(transform["std"], np.float32).reshape(shape)
        x = x * std + np.asarray(transform["mean"], np.float32).reshape(shape)
    pixels = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    return [np.ascontiguousarray(pixels), *inputs[1:]]


class PixelInput(Runtime):
    """``inner`` (a runtime of a uint8-input artifact) fed float NCHW data."""

    def __init__(self, inner: Runtime, transform: dict[str, Any]) -> None:
        self.inner, self.transform = inner, transform
        self.name = inner.name  # type: ignore[misc]
        super().__init__(inner.artifact, inner.threads)
        self.fixed_batch = inner.fixed_batch
        self.pads_last_batch = inner.pads_last_batch  # type: ignore[misc]

    def run_all(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self.inner.run_all(to_pixels(inputs, self.transform))

    def prepare(self, inputs: list[np.ndarray]) -> Callable[[], object]:
        return self.inner.prepare(to_pixels(inputs, self.transform))

    def read_outputs(self, result: object) -> list[np.ndarray]:
        return self.inner.read_outputs(result)

    def __getattr__(self, attr: str) -> Any:  # anything a backend adds of its own
        return getattr(self.inner, attr)

    def int8_graphs(self, inputs: list[np.ndarray]) -> Any:
        return self.inner.int8_graphs(to_pixels(inputs, self.transform))

    def input_specs(self) -> Any:
        return self.inner.input_specs()

    def output_names(self) -> list[str]:
        return self.inner.output_names()

    def param_count(self) -> int | None:
        return self.inner.param_count()

    def precision(self) -> str:
        return self.inner.precision()

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
