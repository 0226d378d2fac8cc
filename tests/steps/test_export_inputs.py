"""Which artifact each export takes: the runner feeds a step the newest one it accepts."""

from pathlib import Path

import pytest

from modelpress.core.artifact import Artifact
from modelpress.core.inputs import InputSpec
from modelpress.steps.export import ExportConfig

SPEC = [InputSpec("input", (1, 1, 8, 8))]
TORCH_FP32 = Artifact("baseline", "torch", SPEC, "fp32")
TORCH_INT8 = Artifact("torch-int8", "torch", SPEC, "int8")  # PT2E (X86 quantizer)
QAT_INT8 = Artifact(
    "torch-int8-qat", "torch", SPEC, "int8", handoffs={"qat_float_model": Path("f.pt2")}
)
ONNX_FP32 = Artifact("onnx-fp32", "onnx", SPEC, "fp32")
ONNX_INT8 = Artifact("onnx-int8", "onnx", SPEC, "int8")


@pytest.mark.parametrize(
    ("fmt", "precision", "accepted"),
    [
        ("onnx", "fp32", {"baseline"}),
        ("onnx", "int8", {"baseline", "torch-int8", "torch-int8-qat", "onnx-fp32"}),
        ("onnx", "fp16", {"baseline", "onnx-fp32"}),
        ("tflite", "int8", {"baseline", "torch-int8-qat"}),  # never the X86-quantized graph
        ("tflite", "fp32", {"baseline"}),
        ("openvino", "int8", {"baseline", "onnx-fp32"}),
        ("torchscript", "fp32", {"baseline"}),
    ],
)
def test_each_export_accepts_what_it_can_convert(fmt: str, precision: str, accepted: set) -> None:
    config = ExportConfig(format=fmt, precision=precision)
    candidates = [TORCH_FP32, TORCH_INT8, QAT_INT8, ONNX_FP32, ONNX_INT8]
    assert {a.name for a in candidates if config.accepts(a)} == accepted
