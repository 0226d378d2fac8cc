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

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from modelpress.core.artifact import Artifact, Precision
from modelpress.core.context import StepContext
from modelpress.core.formats import io_not_taken, not_exported
from modelpress.core.registry import StepConfig, Takes, config_class, handler_for, register_step


class ExportConfig(StepConfig):
    """What every format takes; ``format:`` chooses the backend's own config below (``OnnxExport``,
    ``TfliteExport``, ``OpenvinoExport``, ``TorchscriptExport``), so a setting one backend has no
    use for is refused by name instead of ignored. ``ExportConfig(format=...)`` and
    ``ExportConfig.model_validate({...})`` build the backend's config."""

    type: Literal["export"] = "export"
    format: Literal["onnx", "tflite", "torchscript", "openvino"] = "onnx"
    precision: Precision = "fp32"
    # int8: calibration on the calibration split; None: the whole calibration split
    calibration_samples: int | None = Field(None, ge=1)
    # the model's input: uint8 (onnx, tflite) takes a camera's uint8 NHWC frame, converted in
    # the graph; float / int8 (tflite) insist on that quantized I/O type
    io: Literal["float", "int8", "uint8"] | None = None
    # INT8: the task's decode tail (detection: after the head's last convolutions) stays
    # float; false quantizes it too (to show the collapse it prevents)
    float_tail: bool = True

    reads_targets: ClassVar[tuple[str, ...]] = ()

    def __new__(cls, *args: Any, **data: Any) -> ExportConfig:
        return super().__new__(cls.variant(data))

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> ExportConfig:  # type: ignore[override]
        sub = cls.variant(obj) if isinstance(obj, dict) else cls
        return super(ExportConfig, sub).model_validate(obj, *args, **kwargs)  # type: ignore[return-value]

    @classmethod
    def variant(cls, raw: dict[str, Any]) -> type[ExportConfig]:
        return backend_config(raw.get("format", "onnx")) if cls is ExportConfig else cls

    @classmethod
    def variants(cls) -> dict[str, type[ExportConfig]]:  # type: ignore[override]
        return {f"format: {name}": c for name, c in BACKENDS.items()}

    @model_validator(mode="before")
    @classmethod
    def _written_before(cls, data: Any) -> Any:
        """A recipe written out when one config held every format's keys lists the ONNX ones
        for every format: at their defaults they are dropped; set otherwise, refused by name."""
        if not isinstance(data, dict):
            return data
        return {
            k: v
            for k, v in data.items()
            if k in cls.model_fields or _ONE_CONFIG_DEFAULTS.get(k, object()) != v
        }

    @model_validator(mode="after")
    def _combination(self) -> ExportConfig:
        unsupported = not_exported(self.format, self.precision)
        if unsupported:
            raise ValueError(unsupported)
        if self.io is not None and (wrong := io_not_taken(self.format, self.io)):
            raise ValueError(wrong)
        return self

    def computation(self) -> dict[str, Any]:
        """The node key's fields as they were when one config held every format's keys (the
        ONNX ones at their defaults for the other formats), so runs from before resume."""
        return {**_ONE_CONFIG_DEFAULTS, **super().computation()}

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


class OnnxExport(ExportConfig):
    """``format: onnx``: torch.onnx (dynamo); fp16 and int8 by ONNX Runtime (QDQ, calibrated)."""

    format: Literal["onnx"] = "onnx"
    opset: int = Field(18, ge=13, le=23)
    dynamic_batch: bool = True
    slim: bool = True  # onnxslim: constant folding and fusions; verification still applies
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    per_channel: bool = True
    activation_type: Literal["auto", "uint8", "int8"] = "auto"  # auto: measure both, keep faster
    keep_fp32: list[str] = Field(default_factory=list)  # node names or op types left in FP32
    # int8: the convolution reading the image input (3 channels: slow int8 kernels); auto keeps
    # it int8
    stem: Literal["auto", "int8", "fp32"] = "auto"
    fallback: bool = True  # keep sensitive layers FP32 until targets.max_accuracy_drop holds

    reads_targets: ClassVar[tuple[str, ...]] = ("max_accuracy_drop",)  # the INT8 fallback


class TfliteExport(ExportConfig):
    """``format: tflite``: litert-torch, int8 by PT2E (the [tflite] extra)."""

    format: Literal["tflite"] = "tflite"
    per_channel: bool = True
    # int8: the convolution reading the image input; auto builds it both ways and keeps a float
    # stem only if over 5 % faster
    stem: Literal["auto", "int8", "fp32"] = "auto"


class OpenvinoExport(ExportConfig):
    """``format: openvino``: OpenVINO IR converted from the FP32 ONNX, int8 by NNCF."""

    format: Literal["openvino"] = "openvino"


class TorchscriptExport(ExportConfig):
    """``format: torchscript``: the ``torchscript`` step, through the registry."""

    format: Literal["torchscript"] = "torchscript"


BACKENDS: dict[str, type[ExportConfig]] = {
    "onnx": OnnxExport,
    "tflite": TfliteExport,
    "openvino": OpenvinoExport,
    "torchscript": TorchscriptExport,
}


_ONE_CONFIG_DEFAULTS = {
    k: v
    for k, v in OnnxExport().model_dump(mode="json").items()
    if k not in ExportConfig.model_fields
}


def backend_config(fmt: Any) -> type[ExportConfig]:
    """The config class of a format (``ExportConfig`` itself for a name that is none: its
    validation then names the formats)."""
    return BACKENDS.get(fmt, ExportConfig) if isinstance(fmt, str) else ExportConfig


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
