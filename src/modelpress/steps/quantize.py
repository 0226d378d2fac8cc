"""``quantize``: torch-level quantization, the model stays a torch model.

    method: static   PT2E static INT8 (torchao ``prepare_pt2e``/``convert_pt2e``) with the
                     X86 Inductor quantizer: uint8 activations, int8 per-channel weights,
                     calibrated on the calibration split. Exported to ONNX it becomes a QDQ
                     graph that ONNX Runtime runs with int8 kernels.
    method: dynamic  INT8 weights, activations quantized on the fly (torchao
                     ``Int8DynamicActivationInt8WeightConfig``): for Linear-heavy models.
    method: fp16     weights and compute in half precision (float I/O kept).
In torch eager a static INT8 graph runs as a reference (quantize/dequantize around float ops):
its latency there is not an INT8 kernel's; export it to ONNX for that, and the record shows both.
The result is saved as a ``.pt2`` ExportedProgram (architecture and weights, no pickled code).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from modelpress.core.artifact import Artifact
from modelpress.core.context import StepContext
from modelpress.core.formats import METHOD_PRECISION
from modelpress.core.registry import StepConfig, Takes, register_step
from modelpress.sources.models import eval_mode
from modelpress.steps.float_tail import describe, with_float_tail
from modelpress.steps.quiet import quiet
from modelpress.steps.shared import REFERENCE_INT8, calibrate, capture, save_pt2


class QuantizeConfig(StepConfig):
    type: Literal["quantize"] = "quantize"
    method: Literal["static", "dynamic", "fp16"] = "static"
    calibration_samples: int | None = Field(None, ge=1)  # None: the whole calibration split
    # INT8: the task's decode tail (detection: after the head's last convolutions) stays
    # float; false quantizes it too (to show the collapse it prevents)
    float_tail: bool = True

    def default_name(self) -> str:
        return f"quantize-{self.method}"

    def makes(self) -> Takes:
        return Takes("torch", (METHOD_PRECISION[self.method],))


def pt2e_static(
    module: nn.Module,
    ctx: StepContext,
    samples: int | None,
    where: str,
    float_tail: list[str] | None = None,
) -> tuple[nn.Module, int]:
    """PT2E static INT8 (X86 quantizer); with ``float_tail`` (a list) the task's decode tail
    is left unannotated and the op names kept float are appended to it."""
    with quiet():
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    graph = capture(module, ctx, where)
    quantizer = xiq.X86InductorQuantizer().set_global(
        xiq.get_default_x86_inductor_quantization_config()
    )
    if float_tail is not None:
        quantizer = with_float_tail(quantizer, float_tail)
    prepared = prepare_pt2e(graph, quantizer)
    split = ctx.calibration(samples, where)
    calibrate(prepared, split, 32, ctx, where)
    return convert_pt2e(prepared), len(split)


def to_half(module: nn.Module) -> nn.Module:
    """Half-precision weights and compute behind float32 inputs and outputs (forward hooks keep
    the model's own signature, so it exports like the original)."""

    def inputs_to_half(_: nn.Module, args: tuple) -> tuple:
        return tuple(a.half() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)

    def output_to_float(_: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        return out.float() if torch.is_tensor(out) else out

    module = module.half()
    module.register_forward_pre_hook(inputs_to_half)
    module.register_forward_hook(output_to_float)
    return module


@register_step(QuantizeConfig)
def _quantize(artifact: Artifact, config: QuantizeConfig, ctx: StepContext) -> Artifact:
    import copy

    where = config.display_name
    module = eval_mode(copy.deepcopy(artifact.module))  # the parent stays as it was
    details: dict = {"method": config.method}
    notes: list[str] = []
    if config.method == "static":
        tail = [] if ctx.task.float_tail and config.float_tail else None
        quantized, n = pt2e_static(module, ctx, config.calibration_samples, where, tail)
        precision = "int8"
        if tail is not None:
            details["float_tail"] = describe(tail, ctx.task.float_tail)
        details |= {
            "quantizer": "torchao X86InductorQuantizer (PT2E)",
            "calibration_samples": n,
            "activations": "uint8 (asymmetric)",
            "weights": "int8 per-channel",
        }
        notes.append(REFERENCE_INT8)
    elif config.method == "dynamic":
        with quiet():
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

            quantize_(module, Int8DynamicActivationInt8WeightConfig())
        quantized, precision = module, "int8-dynamic"
        details |= {
            "quantizer": "torchao Int8DynamicActivationInt8WeightConfig",
            "layers": "Linear",
        }
    else:
        quantized, precision = to_half(module), "fp16"
    loaded, path = save_pt2(quantized, ctx, where)
    return artifact.child(
        "torch",
        precision,  # type: ignore[arg-type]
        path,
        where,
        module=loaded,
        notes=notes,
        details=details,
    )
