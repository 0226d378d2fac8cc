"""torch → ONNX fp32 with the torch.onnx dynamo exporter.

A dynamic batch dimension where the model allows it (else the example's fixed batch, recorded),
``onnx.checker`` on the result, then optionally onnxslim (checked again).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch

from modelpress.core.artifact import Artifact
from modelpress.core.context import StepContext
from modelpress.errors import StepError, first_line
from modelpress.sources.models import eval_mode
from modelpress.steps.quiet import quiet

if TYPE_CHECKING:
    from modelpress.steps.export import ExportConfig, OnnxExport


def _export_onnx(
    module: torch.nn.Module, example: tuple, names: list[str], out: Path, opset: int, dynamic: bool
) -> None:
    kwargs = {}
    if dynamic:
        batch = torch.export.Dim("batch")
        kwargs["dynamic_shapes"] = tuple({0: batch} for _ in example)
    torch.onnx.export(
        module,
        example,
        str(out),
        input_names=names,
        output_names=["output"],
        opset_version=opset,
        dynamo=True,
        external_data=False,
        verbose=False,
        **kwargs,
    )


def to_onnx(artifact: Artifact, config: OnnxExport, ctx: StepContext, out: Path) -> Artifact:
    import onnx

    module = artifact.module
    if module is None:
        raise StepError(f"{config.display_name}: needs a torch model as input")
    example = tuple(ctx.example_inputs(2))  # batch 2: batch 1 would be specialised away
    names = [s.name for s in artifact.input_specs]
    out.parent.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    with quiet():  # "torchvision is not installed", the exporter's progress lines
        dynamic = config.dynamic_batch
        try:
            _export_onnx(eval_mode(module), example, names, out, config.opset, dynamic)
        except Exception as e:
            if not dynamic:
                raise StepError(f"torch.onnx.export failed: {first_line(e)}") from None
            notes.append(f"dynamic batch not exportable ({first_line(e)[:120]}); fixed batch used")
            dynamic = False
            example = tuple(ctx.example_inputs(1))
            try:
                _export_onnx(eval_mode(module), example, names, out, config.opset, dynamic)
            except Exception as e2:
                raise StepError(f"torch.onnx.export failed: {first_line(e2)}") from None
    try:
        onnx.checker.check_model(str(out), full_check=True)
    except Exception as e:
        raise StepError(f"onnx.checker rejected the export: {first_line(e)}") from None
    slimmed = False
    if config.slim:
        import onnxslim

        try:
            model = onnxslim.slim(onnx.load(str(out)))
            onnx.checker.check_model(model, full_check=True)
            onnx.save(model, str(out))
            slimmed = True
        except Exception as e:
            notes.append(f"onnxslim skipped: {first_line(e)[:160]}")
    return artifact.child(
        "onnx",
        artifact.precision,
        out,
        config.display_name,
        notes=notes,
        details={
            "opset": config.opset,
            "dynamic_batch": dynamic,
            "slimmed": slimmed,
            "exporter": "torch.onnx (dynamo)",
        },
    )


def fp32_onnx(artifact: Artifact, config: ExportConfig, ctx: StepContext) -> Path:
    """The FP32 ONNX file to quantize or convert: the input artifact's own, or one exported
    into the step's folder for the purpose."""
    if artifact.format == "onnx":
        if artifact.precision != "fp32" or artifact.path is None:
            raise StepError(f"{config.display_name}: needs an fp32 ONNX model, got {artifact.name}")
        return artifact.path
    from modelpress.steps.export import OnnxExport

    if not isinstance(config, OnnxExport):  # OpenVINO converts an ONNX export at its defaults
        config = OnnxExport(name=config.display_name)
    return cast(Path, to_onnx(artifact, config, ctx, ctx.work_dir() / "model-fp32.onnx").path)
