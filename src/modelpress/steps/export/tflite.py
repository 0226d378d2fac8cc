"""TFLite / LiteRT through litert-torch (no TensorFlow): fp32, fp16, int8-dynamic, int8.

    fp32           litert_torch.convert
    fp16           float16 weights (``quant_recipes.full_fp16_recipe``)
    int8-dynamic   int8 per-channel weights, float activations (``full_dynamic_recipe``)
    int8           full integer: PT2E static quantization with litert-torch's quantizer
                   (symmetric, per-channel) completed by ``tflite_int8.MobileQuantizer`` for
                   add, mul, hardswish, hardsigmoid and mean, calibrated one sample at a time on
                   the calibration split; the converter folds the boundary quantize/dequantize,
                   so the model's inputs and outputs are int8 (the runtime quantizes inputs and
                   dequantizes outputs with each tensor's scale and zero point). The details
                   record the converted graph's op counts (``int8_graph``) and each op type
                   left in float with the reason (``float_ops``; [] when all run in int8)
Models are converted at batch 1: litert-torch's lowering rejects a symbolic batch for common
ops (``flatten``), and the LiteRT runtime resizes the input where the graph allows it.
Needs the ``[tflite]`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from modelpress.core.artifact import Artifact
from modelpress.core.context import StepContext
from modelpress.errors import StepError, first_line
from modelpress.extras import require
from modelpress.sources.models import eval_mode, load_exported
from modelpress.steps.export.pixel_input import PixelModel, pixel_transform
from modelpress.steps.quiet import quiet

if TYPE_CHECKING:
    from modelpress.steps.export import TfliteExport


def _static_int8(
    module: torch.nn.Module,
    example: tuple,
    ctx: StepContext,
    config: TfliteExport,
    details: dict[str, Any],
    float_stem: bool = False,
) -> Any:
    from litert_torch.quantize.pt2e_quantizer import get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from modelpress.steps.export.tflite_int8 import MobileQuantizer, stem_conv, unannotated_ops
    from modelpress.steps.shared import calibrate

    # litert-torch cannot keep a float tail in a full-int8 model: its converter quantizes the
    # float ops between int8 ones again with ranges of its own (a detector's box distances
    # saturate at 127: mAP 0). The tail is quantized, and said so; boxes and scores in outputs
    # of their own (the modelpress layout) keep their own scales
    if ctx.task.float_tail and config.float_tail:
        details["float_tail"] = {"kept": False, "why": LITERT_TAIL}
    quantizer = MobileQuantizer(float_stem=float_stem).set_global(
        get_symmetric_quantization_config(is_per_channel=config.per_channel, is_dynamic=False)
    )
    try:
        graph = torch.export.export(module, example).module()
    except Exception as e:
        raise StepError(f"torch.export cannot capture the model: {first_line(e)}") from None
    stem = stem_conv(graph)
    details["stem_node"] = stem.name if stem is not None else None
    prepared = prepare_pt2e(graph, quantizer)
    skip = {stem.name} if float_stem and stem is not None else set()  # float on purpose
    details["unannotated_ops"] = unannotated_ops(prepared, skip)
    split = ctx.calibration(config.calibration_samples, config.display_name)
    if config.io == "uint8":  # the model takes camera pixels: calibrate on the same
        from modelpress.runtimes.adapt import to_pixels
        from modelpress.sources.data import Split

        split = Split(to_pixels(split.inputs, pixel_transform(ctx, config.display_name)), None)
    calibrate(prepared, split, 1, ctx, config.display_name)  # the graph was captured at batch 1
    quantized = move_exported_model_to_eval(convert_pt2e(prepared, fold_quantize=False))
    torch.nn.Module.train(quantized, False)  # GraphModule.eval() raises; the flag must be clear
    details |= {
        "method": "PT2E static (litert-torch PT2EQuantizer + modelpress MobileQuantizer, "
        "symmetric)",
        "calibration_samples": len(split),
        "per_channel": config.per_channel,
    }
    return quantized, QuantConfig(pt2e_quantizer=quantizer)


LITERT_TAIL = (
    "not kept float: litert-torch's converter re-quantizes float ops between int8 ones in a "
    "full-int8 model (box distances saturated, mAP 0), so the tail is int8; outputs that hold "
    "boxes and scores apart keep separate scales"
)
STEM_MARGIN = 0.95  # a float stem must be this much faster (ratio of medians) to be kept


def _convert(litert_torch: Any, module: Any, example: tuple, quant_config: Any, out: Path) -> None:
    try:
        edge = litert_torch.convert(module, example, quant_config=quant_config)
        out.parent.mkdir(parents=True, exist_ok=True)
        edge.export(str(out))
    except Exception as e:
        raise StepError(f"litert_torch.convert failed: {first_line(e)}") from None


def _int8_stem_measured(
    litert_torch: Any,
    module: torch.nn.Module,
    example: tuple,
    ctx: StepContext,
    config: TfliteExport,
    details: dict[str, Any],
    out: Path,
) -> None:
    """Full int8, with the stem convolution in int8 or in float: ``stem: auto`` builds both,
    times them side by side at batch 1 in LiteRT and keeps the float stem only when it is over
    5 % faster, since it also makes the model's input float32 (``details.stem``)."""

    def build(float_stem: bool, path: Path) -> dict[str, Any]:
        own: dict[str, Any] = {}
        quantized, quant_config = _static_int8(module, example, ctx, config, own, float_stem)
        _convert(litert_torch, quantized, example, quant_config, path)
        return own

    stem = "int8" if config.io in ("int8", "uint8") else config.stem  # a float stem: float input
    if stem != "auto":
        details |= build(stem == "fp32", out)
        if details["stem_node"] is not None:
            how = "asked in the recipe" if stem == config.stem else f"io {config.io} asked"
            details["stem"] = {"node": details["stem_node"], "kept": stem, "how": how}
        return
    first = build(False, out)
    if first["stem_node"] is None:
        details |= first
        return
    candidate = ctx.work_dir() / "candidate-float-stem.tflite"
    second = build(True, candidate)
    arts = {
        key: Artifact("timing", "tflite", ctx.input_specs, path=path)
        for key, path in (("int8", out), ("fp32", candidate))
    }
    timed = ctx.time_side_by_side(arts, f"{config.display_name}: int8 or float stem")
    # a clear win only: a float stem also turns the model's input from int8 into float32
    kept = "fp32" if timed.ms["fp32"] < STEM_MARGIN * timed.ms["int8"] else "int8"
    if kept == "fp32":
        candidate.replace(out)
    else:
        candidate.unlink(missing_ok=True)
    details |= second if kept == "fp32" else first
    details["stem"] = {
        "node": first["stem_node"],
        "kept": kept,
        "how": "built both ways, timed side by side at batch 1 in LiteRT; the float stem "
        f"kept only if over {100 * (1 - STEM_MARGIN):.0f} % faster (it makes the input float32)",
        "batch1_ms": {k: round(v, 4) for k, v in timed.ms.items()},
        "timed_between": timed.timed_between,
    }


def to_tflite(artifact: Artifact, config: TfliteExport, ctx: StepContext, out: Path) -> Artifact:
    with quiet():  # its import alone logs at length
        litert_torch = require("litert_torch", "tflite", "the tflite format")
    module = eval_mode(artifact.module) if artifact.module is not None else None
    details: dict[str, Any] = {"converter": "litert-torch", "batch": 1}
    notes: list[str] = []
    if "qat_float_model" in artifact.handoffs:  # litert-torch cannot prepare QAT (#355, #801)
        module = load_exported(artifact.handoffs["qat_float_model"])
        notes.append(
            "QAT model: its QAT-trained float weights were converted with litert-torch's "
            "PTQ quantizer calibrated on the calibration split (litert-torch cannot "
            "prepare QAT: upstream issues #355, #801)"
        )
        details["from_qat_weights"] = True
    if module is None:
        raise StepError(f"{config.display_name}: needs a torch model as input")
    example = tuple(ctx.example_inputs(1))
    transform = None
    if config.io == "uint8":  # permute, cast, /255 and normalize inside the converted graph
        from modelpress.runtimes.adapt import to_pixels

        transform = pixel_transform(ctx, config.display_name)
        module = eval_mode(PixelModel(module, transform))
        pixels = to_pixels([t.numpy() for t in example], transform)
        example = tuple(torch.from_numpy(a) for a in pixels)
        details["input"] = "uint8 NHWC; permute, cast, /255 and normalize in the graph"
    with quiet():
        from litert_torch.generative.quantize import quant_recipes

        quant_config = None
        if config.precision == "fp16":
            quant_config = quant_recipes.full_fp16_recipe()
            details["method"] = "float16 weights (full_fp16_recipe)"
        elif config.precision == "int8-dynamic":
            quant_config = quant_recipes.full_dynamic_recipe()
            details["method"] = "int8 weights, float activations (full_dynamic_recipe)"
        if config.precision == "int8":
            _int8_stem_measured(litert_torch, module, example, ctx, config, details, out)
        else:
            _convert(litert_torch, module, example, quant_config, out)
    from modelpress.runtimes.litert import describe_io

    io_types = describe_io(out)
    details["io"] = io_types
    got = io_types["inputs"][0]
    wanted = "float32" if config.io == "float" else config.io
    if wanted is not None and got != wanted:
        raise StepError(
            f"{config.display_name}: io {config.io} asked, but litert-torch gives {got} inputs "
            "at this precision (its converter folds the boundary quantize/dequantize and "
            "TFLite's interface tool leaves it as is); drop io or ask for that"
        )
    if config.precision == "int8":
        from modelpress.steps.export import tflite_int8

        graph = tflite_int8.int8_graph(tflite_int8.tflite_ops(out))
        graph["xnnpack_partitions"] = tflite_int8.xnnpack_partitions(out)
        details["int8_graph"] = graph
        details["float_ops"] = tflite_int8.explain_float_ops(
            graph,
            details["unannotated_ops"],
            float_stem=details.get("stem", {}).get("kept") == "fp32",
        )
    if config.precision in ("int8", "int8-dynamic"):  # small int8 files: names are a real share
        from modelpress.steps.export.tflite_int8 import compact_tflite_names

        details["names_compacted_bytes"] = compact_tflite_names(out)
    if any(d == "int32" for d in io_types["inputs"]):
        notes.append("int64 inputs became int32 (LiteRT's default); the runtime casts them")
    child = artifact.child(
        "tflite",
        config.precision,
        out,
        config.display_name,
        notes=notes,
        details=details,
    )
    if transform is not None:
        from modelpress.runtimes.adapt import pixel_specs

        child.input_transform, child.input_specs = transform, pixel_specs(child.input_specs)
        child.name = f"{child.name}-uint8-input"
    return child
