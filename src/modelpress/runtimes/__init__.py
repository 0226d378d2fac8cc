"""Runtimes load an artifact and run batches. Evaluation and benchmarking use only this.

Backends are found by the artifact's format; each lives in its own module, imported on use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from modelpress.runtimes.base import Runtime

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact

# format → (module, class); modules import their heavy library only when loaded.
_BACKENDS = {
    "torch": ("modelpress.runtimes.eager", "TorchRuntime"),
    "torchscript": ("modelpress.runtimes.torchscript", "TorchScriptRuntime"),
    "onnx": ("modelpress.runtimes.ort", "OnnxRuntime"),
    "openvino": ("modelpress.runtimes.openvino", "OpenVinoRuntime"),
    "tflite": ("modelpress.runtimes.litert", "LiteRTRuntime"),
}


def runtime_for(artifact: Artifact, threads: int) -> Runtime:
    from modelpress.errors import RuntimeUnavailableError

    if artifact.format not in _BACKENDS:
        raise RuntimeUnavailableError(f"{artifact.name}: no runtime for format '{artifact.format}'")
    module, cls = _BACKENDS[artifact.format]
    runtime = getattr(importlib.import_module(module), cls)(artifact, threads)
    transform = getattr(artifact, "input_transform", None)
    if transform:  # a uint8 camera-frame input: fed the data's float images, converted
        from modelpress.runtimes.adapt import PixelInput

        return PixelInput(runtime, transform)
    return runtime


def file_param_count(artifact: Artifact) -> int | None:
    """Parameters read from the file alone, no runtime loaded (an ONNX file's initializers),
    for a file measured in another process; None where a format cannot say."""
    if artifact.format == "onnx" and artifact.path is not None:
        from modelpress.runtimes.onnx_graph import file_param_count as onnx_params

        return onnx_params(artifact.path)
    return None


__all__ = ["Runtime", "file_param_count", "runtime_for"]
