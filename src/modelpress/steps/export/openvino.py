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
from modelpress.core.context import Context
from modelpress.errors import StepError, first_line
from modelpress.extras import require
from modelpress.steps.quiet import quiet

if TYPE_CHECKING:
    from modelpress.steps.export import ExportConfig


def to_openvino(artifact: Artifact, config: ExportConfig, ctx: Context, out: Path) -> Artifact:
    ov = require("openvino", "openvino", "the OpenVINO format")
    from modelpress.steps.export.onnx import fp32_onnx

    details: dict[str, Any] = {"converted_from": "onnx fp32"}
    try:
        model = ov.convert_model(str(fp32_onnx(artifact, config, ctx)))
    except Exception as e:
        raise StepError(f"openvino.convert_model failed: {first_line(e)}") from None
    if config.precision == "int8":
        nncf = require("nncf", "openvino", "OpenVINO int8")
        split = ctx.calibration(config.calibration_samples, config.display_name)
        samples = [
            arrays[0] if len(arrays) == 1 else tuple(arrays) for arrays, _ in split.batches(1)
        ]
        nncf.set_log_level(logging.ERROR)
        try:
            with quiet():  # nncf draws progress bars
                model = nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples))
        except Exception as e:
            raise StepError(f"nncf.quantize failed: {first_line(e)}") from None
        details |= {"method": "nncf.quantize (PTQ)", "calibration_samples": len(samples)}
    elif config.precision == "int8-dynamic":
        raise StepError("openvino exports fp32, fp16 or int8; int8-dynamic is an ONNX precision")
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
