"""LiteRT interpreter (format ``tflite``) with its default XNNPACK delegate.

Integer-I/O models (full int8) take float data like any other artifact: inputs are quantized and
outputs dequantized here with each tensor's own scale and zero point. The interpreter is resized
to each batch size where the graph allows; where it does not (a reshape fixed at batch 1), the
artifact is fixed-batch and evaluation feeds it one sample at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from modelpress.chatter import native_banners
from modelpress.errors import ModelSourceError, first_line
from modelpress.extras import require
from modelpress.runtimes.base import Runtime
from modelpress.sources.inputs import InputSpec


def _interpreter(path: Path, threads: int) -> object:
    Interpreter = require("ai_edge_litert.interpreter", "tflite", "the tflite format").Interpreter
    try:
        return Interpreter(model_path=str(path), num_threads=threads)
    except Exception as e:
        raise ModelSourceError(
            f"{path}: the LiteRT interpreter cannot load it ({first_line(e)})"
        ) from None


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """float → the tensor's integer type with its (scale, zero point); plain cast otherwise."""
    dtype = np.dtype(detail["dtype"])
    if dtype in (np.int8, np.uint8, np.int16) and np.issubdtype(x.dtype, np.floating):
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]) in (np.int8, np.uint8, np.int16):
        scale, zero = detail["quantization"]
        return (y.astype(np.float32) - zero) * scale
    return y.astype(np.float32)


def describe_io(path: Path) -> dict[str, list[str]]:
    it = _interpreter(path, 1)
    return {
        "inputs": [np.dtype(d["dtype"]).name for d in it.get_input_details()],
        "outputs": [np.dtype(d["dtype"]).name for d in it.get_output_details()],
    }


class LiteRTRuntime(Runtime):
    name = "litert"

    def __init__(self, artifact, threads: int) -> None:
        super().__init__(artifact, threads)
        with native_banners():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
            self.it = _interpreter(artifact.path, threads)
            self.it.allocate_tensors()
            self.inputs = self.it.get_input_details()
            self.output = self.it.get_output_details()[0]
            self.batch = int(self.inputs[0]["shape"][0])
            if not self._resize(self.batch + 1):  # can the graph take another batch size?
                self.fixed_batch = self.batch

    def _resize(self, batch: int) -> bool:
        """Resize every input to ``batch``; on failure put the previous shapes back."""
        if batch == self.batch:
            return True
        previous = [(d["index"], list(d["shape"])) for d in self.inputs]
        try:
            for index, shape in previous:
                self.it.resize_tensor_input(index, [batch, *shape[1:]])
            self.it.allocate_tensors()
        except Exception:
            for index, shape in previous:
                self.it.resize_tensor_input(index, shape)
            self.it.allocate_tensors()
            return False
        self.batch = batch
        self.inputs = self.it.get_input_details()
        self.output = self.it.get_output_details()[0]
        return True

    def _set(self, inputs: list[np.ndarray]) -> None:
        if len(inputs[0]) != self.batch and not self._resize(len(inputs[0])):
            raise ModelSourceError(f"{self.artifact.path}: takes batch {self.batch} only")
        for d, a in zip(self.inputs, inputs, strict=True):
            self.it.set_tensor(d["index"], np.ascontiguousarray(quantize(a, d)))

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        self._set(inputs)
        self.it.invoke()
        return dequantize(self.it.get_tensor(self.output["index"]), self.output)

    def prepare(self, inputs: list[np.ndarray]) -> Callable[[], object]:
        self._set(inputs)  # quantized and copied in once; each call is the interpreter's work
        return self.it.invoke

    def precision(self) -> str:
        details = self.it.get_tensor_details()
        dtypes = {np.dtype(d["dtype"]).name for d in details}
        io = np.dtype(self.inputs[0]["dtype"]).name
        if io in ("int8", "uint8"):
            return "int8"
        if "int8" in dtypes:
            return "int8-dynamic"
        if "float16" in dtypes:
            return "fp16"
        return "fp32"

    def input_specs(self) -> list[InputSpec]:
        specs = []
        for d in self.inputs:
            dtype = np.dtype(d["dtype"]).name
            dtype = (
                "float32"
                if dtype in ("int8", "uint8")
                else ("int64" if dtype == "int32" else dtype)
            )
            specs.append(
                InputSpec(d["name"].replace(":", "_"), tuple(int(v) for v in d["shape"]), dtype)
            )
        return specs
