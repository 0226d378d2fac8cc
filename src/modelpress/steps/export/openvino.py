"""OpenVINO IR (.xml + .bin) for x86 edge boxes: fp32, fp16 (compressed weights), int8 (NNCF).

INT8 is NNCF post-training quantization (``nncf.quantize``) calibrated on the calibration split.
The model is converted from the FP32 ONNX export, so every format starts from the same graph.
Needs the ``[openvino]`` extra.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpress.core.artifact import Artifact
from modelpress.core.context import StepContext
from modelpress.core.formats import not_exported
from modelpress.errors import StepError, first_line
from modelpress.extras import require
from modelpress.steps.quiet import quiet

if TYPE_CHECKING:
    from modelpress.steps.export import OpenvinoExport


def _int8_ready(src: Path, work: Path, details: dict[str, Any]) -> Path:
    """The FP32 graph with each squeeze-excite HardSigmoid folded into the convolution before it
    (a clip the int8 convolution fuses): OpenVINO otherwise runs it in f32 between reorders
    (21 % of MobileNetV3-Small's time). Hardswish stays one op, which OpenVINO fuses itself."""
    from modelpress.steps.export.onnx_int8_graph import rewrite_for_int8

    out = work / "model-fp32-openvino-int8-ready.onnx"
    try:
        done = rewrite_for_int8(str(src), str(out), pooling=False)
    except Exception as e:
        details["graph_rewrites"] = {"skipped": first_line(e, 160)}
        return src
    details["graph_rewrites"] = {k: v for k, v in done.items() if v}
    return out if any(done.values()) else src


def _nncf_settings(source: Path) -> dict[str, Any]:
    """NNCF's settings for this graph. A transformer (attention: Softmax between MatMuls, no
    convolution) gets ``model_type=TRANSFORMER``: SmoothQuant, and the ops NNCF knows must stay
    float in attention (softmax inputs, layer norms). CNNs keep NNCF's defaults: the
    PERFORMANCE preset (symmetric) and fast bias correction: on MobileNetV3-Small at 64×64 the
    MIXED preset and full bias correction were no faster (within 2 %) at the same top-1 within
    one sample, and leaving the stem convolution in float was slower at 64×64 and 224×224."""
    import onnx

    ops = {n.op_type for n in onnx.load(str(source), load_external_data=False).graph.node}
    transformer = "Softmax" in ops and "MatMul" in ops and "Conv" not in ops
    return {
        "preset": "performance",
        "model_type": "transformer" if transformer else None,
        "fast_bias_correction": True,
    }


def to_openvino(
    artifact: Artifact, config: OpenvinoExport, ctx: StepContext, out: Path
) -> Artifact:
    ov = require("openvino", "openvino", "the OpenVINO format")
    from modelpress.steps.export.onnx import fp32_onnx

    details: dict[str, Any] = {"converted_from": "onnx fp32"}
    source = fp32_onnx(artifact, config, ctx)
    if config.precision == "int8":
        source = _int8_ready(source, ctx.work_dir(), details)
    try:
        model = ov.convert_model(str(source))
    except Exception as e:
        raise StepError(f"openvino.convert_model failed: {first_line(e)}") from None
    if config.precision == "int8":
        nncf = require("nncf", "openvino", "OpenVINO int8")
        split = ctx.calibration(config.calibration_samples, config.display_name)
        samples = [
            arrays[0] if len(arrays) == 1 else tuple(arrays) for arrays, _ in split.batches(1)
        ]
        nncf.set_log_level(logging.ERROR)
        settings = _nncf_settings(source)
        kwargs: dict[str, Any] = (
            {"model_type": nncf.ModelType.TRANSFORMER} if settings["model_type"] else {}
        )
        if ctx.task.float_tail and config.float_tail:
            from modelpress.steps.float_tail import describe, openvino_tail

            tail = openvino_tail(model)
            if tail:
                names = [op.get_friendly_name() for op in tail]
                kwargs["ignored_scope"] = nncf.IgnoredScope(names=names, validate=False)
                details["float_tail"] = describe(
                    [op.get_type_name() for op in tail], ctx.task.float_tail
                )
        try:
            with quiet():  # nncf draws progress bars
                model = nncf.quantize(
                    model, nncf.Dataset(samples), subset_size=len(samples), **kwargs
                )
        except Exception as e:
            raise StepError(f"nncf.quantize failed: {first_line(e)}") from None
        details |= {
            "method": "nncf.quantize (PTQ)",
            "calibration_samples": len(samples),
            "nncf": settings,
        }
    elif (unsupported := not_exported("openvino", config.precision)) is not None:
        raise StepError(unsupported)  # the recipe refuses it first; a config built by hand
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(out), compress_to_fp16=config.precision == "fp16")
    return artifact.child(
        "openvino",
        config.precision,
        out,
        config.display_name,
        companions=[out.with_suffix(".bin")],
        details=details,
    )
