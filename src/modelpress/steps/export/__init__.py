"""``export``: write a deployable file for a runtime, at a precision.

    format: onnx        torch.onnx (dynamo); fp16 and int8 by ORT (QDQ, calibrated)
    format: tflite      litert-torch, int8 by PT2E; the [tflite] extra
    format: openvino    OpenVINO IR, int8 by NNCF; the [openvino] extra
    format: torchscript the ``torchscript`` step
The precisions each format is exported at are core/formats.py's table (EXPORT_PRECISIONS).
Each artifact is then verified against its parent and measured in its own runtime by the runner.
A quantized ONNX export starts from the newest ONNX fp32 artifact of the run when there is one
(its lineage then reads torch → onnx-fp32 → onnx-int8), else it exports one itself.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from modelpress.core.artifact import Artifact, Precision
from modelpress.core.context import StepContext
from modelpress.core.formats import io_not_taken, not_exported
from modelpress.core.registry import StepConfig, Takes, config_class, handler_for, register_step


class ExportConfig(StepConfig):
    type: Literal["export"] = "export"
    format: Literal["onnx", "tflite", "torchscript", "openvino"] = "onnx"
    precision: Precision = "fp32"
    opset: int = Field(18, ge=13, le=23)
    dynamic_batch: bool = True
    slim: bool = True  # onnxslim: constant folding and fusions; verification still applies
    # int8: calibration on the calibration split
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    calibration_samples: int | None = Field(None, ge=1)  # None: the whole calibration split
    per_channel: bool = True
    activation_type: Literal["auto", "uint8", "int8"] = "auto"  # auto: measure both, keep faster
    keep_fp32: list[str] = Field(default_factory=list)  # node names or op types left in FP32
    # int8: the convolution reading the image input (3 channels: slow int8 kernels). tflite auto
    # builds it both ways and keeps a float stem only if over 5 % faster; onnx auto keeps int8
    stem: Literal["auto", "int8", "fp32"] = "auto"
    fallback: bool = True  # keep sensitive layers FP32 until targets.max_accuracy_drop holds
    # the model's input: uint8 (onnx, tflite) takes a camera's uint8 NHWC frame, converted in
    # the graph; float / int8 (tflite) insist on that quantized I/O type
    io: Literal["float", "int8", "uint8"] | None = None
    # INT8: the task's decode tail (detection: after the head's last convolutions) stays
    # float; false quantizes it too (to show the collapse it prevents)
    float_tail: bool = True

    reads_targets: ClassVar[tuple[str, ...]] = ("max_accuracy_drop",)  # the INT8 fallback

    @model_validator(mode="after")
    def _combination(self) -> ExportConfig:
        unsupported = not_exported(self.format, self.precision)
        if unsupported:
            raise ValueError(unsupported)
        if self.io is not None and (wrong := io_not_taken(self.format, self.io)):
            raise ValueError(wrong)
        return self

    def default_name(self) -> str:
        suffix = "" if self.precision == "fp32" else f"-{self.precision}"
        io = "-uint8-input" if self.io == "uint8" else ""
        return f"export-{self.format}{suffix}{io}"

    def makes(self) -> Takes:
        return Takes(self.format, ())  # the precision may fall back (INT8 kept partly FP32)

    def takes(self) -> list[Takes]:
        # every format converts (and, but for torchscript, quantizes) an fp32 torch model
        takes = [Takes("torch")]
        if self.format == "onnx" and self.precision in ("int8", "fp16"):
            # a model the quantize/qat step already made int8 or fp16 is exported as it is
            takes.append(Takes("torch", (self.precision,)))
        if self.format == "openvino" or (self.format == "onnx" and self.precision != "fp32"):
            takes.append(Takes("onnx"))  # OpenVINO converts, and ORT quantizes, fp32 ONNX
        if self.format == "tflite" and self.precision == "int8":
            # a QAT model, through its QAT-trained float weights (litert-torch cannot prepare QAT)
            takes.append(Takes("torch", ("int8",), companion="qat_float_model"))
        return takes


@register_step(ExportConfig)
def _export(artifact: Artifact, config: ExportConfig, ctx: StepContext) -> Artifact:
    stem = f"model-{config.precision}" + ("-uint8-input" if config.io == "uint8" else "")
    if config.format == "torchscript":  # the torchscript step's own handler, through the registry
        torchscript = config_class("torchscript")(name=config.display_name)  # type: ignore[misc]
        return handler_for(torchscript)(artifact, torchscript, ctx)
    if config.format == "tflite":
        from modelpress.steps.export.tflite import to_tflite

        return to_tflite(
            artifact, config, ctx, ctx.artifact_path(config.display_name, stem, ".tflite")
        )
    if config.format == "openvino":
        from modelpress.steps.export.openvino import to_openvino

        return to_openvino(
            artifact, config, ctx, ctx.artifact_path(config.display_name, stem, ".xml")
        )
    out = ctx.artifact_path(config.display_name, stem, ".onnx")
    if (
        artifact.format == "torch"
        and artifact.precision == config.precision
        and config.format == "onnx"
    ):
        from modelpress.steps.export.onnx import to_onnx

        return _pixels(to_onnx(artifact, config, ctx, out), config, ctx)
    from modelpress.steps.export.onnx_quant import quantize_onnx

    return _pixels(quantize_onnx(artifact, config, ctx, out), config, ctx)


def _pixels(child: Artifact, config: ExportConfig, ctx: StepContext) -> Artifact:
    """``io: uint8``: the finished ONNX file takes uint8 NHWC frames (a prefix of ops)."""
    if config.io != "uint8" or child.path is None:
        return child
    from modelpress.runtimes.adapt import pixel_specs
    from modelpress.steps.export.pixel_input import pixel_transform, prefix_onnx

    transform = pixel_transform(ctx, config.display_name)
    prefix_onnx(child.path, transform)
    child.input_transform, child.input_specs = transform, pixel_specs(child.input_specs)
    child.name = f"{child.name}-uint8-input"
    child.details["input"] = "uint8 NHWC; permute, cast, /255 and normalize in the graph"
    return child
