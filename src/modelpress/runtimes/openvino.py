"""OpenVINO runtime (format ``openvino``), CPU plugin, latency hint, fixed thread count."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from modelpress.errors import ModelSourceError, first_line
from modelpress.extras import require
from modelpress.runtimes.base import Runtime


class OpenVinoRuntime(Runtime):
    name = "openvino"

    def __init__(self, artifact, threads: int) -> None:
        super().__init__(artifact, threads)
        ov = require("openvino", "openvino", "the OpenVINO format")
        # f32: on CPUs with bf16 units the plugin would otherwise lower an fp32 model's precision
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
        }
        try:
            self.compiled = ov.Core().compile_model(str(artifact.path), "CPU", config)
        except Exception as e:
            raise ModelSourceError(
                f"{artifact.path}: OpenVINO cannot load it ({first_line(e)})"
            ) from None
        self.request = self.compiled.create_infer_request()
        batch = self.compiled.inputs[0].get_partial_shape()[0]
        self.fixed_batch = batch.get_length() if batch.is_static else None

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        result = self.request.infer({i: np.ascontiguousarray(a) for i, a in enumerate(inputs)})
        return np.asarray(result[self.compiled.outputs[0]], dtype=np.float32).copy()

    def prepare(self, inputs: list[np.ndarray]) -> Callable[[], object]:
        feed = {i: np.ascontiguousarray(a) for i, a in enumerate(inputs)}
        return lambda: self.request.infer(feed)
