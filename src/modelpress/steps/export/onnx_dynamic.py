"""ONNX Runtime dynamic int8 and fp16 (static int8: ``onnx_quant.py``).

Dynamic int8 quantizes MatMul/Gemm weights and embedding tables. When the graph is a transformer
encoder (onnxscript's ORT fusions find attention or skip-layer-norm patterns), the fused graph
(MultiHeadAttention, SkipLayerNormalization, BiasGelu) is quantized too, both are timed side by
side at batch 1 under the run's timing guard, and the fused one is kept only when over 5 %
faster and no larger (``transformer_fusion`` in the record): on this CPU the unfused graph has
been the faster.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpress.core.artifact import Artifact
from modelpress.core.context import StepContext
from modelpress.errors import StepError, first_line
from modelpress.steps.export.onnx import fp32_onnx
from modelpress.steps.export.onnx_quant import batch1_ms_side_by_side, node_names, preprocess
from modelpress.steps.quiet import quiet

if TYPE_CHECKING:
    from modelpress.steps.export import OnnxExport

# Gather: embedding tables (weights only); Attention: ORT's fused attention (QAttention)
DYNAMIC_OPS = ["MatMul", "Gemm", "Gather", "Attention"]
# onnxscript fusion counts that mark a transformer encoder (worth a fused candidate)
TRANSFORMER_FUSIONS = ("sdpa", "mha1", "mha2", "attention", "skip_layer_normalization")
FUSED_MARGIN = 0.95  # the fused candidate must be this much faster (ratio of medians) to win


def _fuse_transformer(src: Path, work: Path) -> tuple[Path | None, dict[str, int]]:
    """The graph with ORT's transformer fusions (multi-head attention, skip layer norm, bias
    GELU, …) as onnxscript's ``optimize_for_ort`` finds them in a torch.onnx (dynamo) export;
    ``None`` when no attention or normalization pattern matches (not a transformer)."""
    import onnx
    import onnx_ir as ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    try:
        with quiet():
            model, counts = optimize_for_ort(ir.load(str(src)))
    except Exception:
        return None, {}
    fused = {k: v for k, v in counts.items() if v}
    if not any(k in fused for k in TRANSFORMER_FUSIONS):
        return None, fused
    out = work / "model-fp32-fused.onnx"
    ir.save(model, str(out))
    proto = onnx.load(str(out))
    del proto.graph.value_info[:]  # stale shapes after the rewrite trip ORT's shape inference
    onnx.save(proto, str(out))
    return out, fused


def _quantize_dynamic(src: Path, out: Path, config: OnnxExport, exclude: list[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with quiet():
            quantize_dynamic(
                str(src),
                str(out),
                weight_type=QuantType.QInt8,
                per_channel=config.per_channel,
                op_types_to_quantize=DYNAMIC_OPS,
                nodes_to_exclude=exclude,
                # fused ops (com.microsoft) have no ONNX shape inference: their outputs are float
                extra_options={"DefaultTensorType": 1},
            )
    except Exception as e:
        raise StepError(f"onnxruntime quantize_dynamic failed: {first_line(e)}") from None


def dynamic_int8(
    artifact: Artifact,
    config: OnnxExport,
    ctx: StepContext,
    out: Path,
    notes: list[str],
    details: dict[str, Any],
) -> None:
    work = ctx.work_dir()
    pre = preprocess(fp32_onnx(artifact, config, ctx), work, notes)
    _, exclude = node_names(pre, config.keep_fp32)
    _quantize_dynamic(pre, out, config, exclude)
    fused, fusions = _fuse_transformer(pre, work)
    if fused is not None:  # a transformer: quantize the fused graph too and keep the faster
        candidate = work / "candidate-fused.onnx"
        try:
            _quantize_dynamic(fused, candidate, config, [])
            timed = batch1_ms_side_by_side(
                {"unfused": out, "fused": candidate}, ctx, f"{config.display_name}: fused or not"
            )
        except Exception as e:  # the unfused artifact stands; say why the fused one did not
            details["transformer_fusion"] = {"fusions": fusions, "failed": first_line(e, 160)}
        else:
            sizes = {"unfused": out.stat().st_size, "fused": candidate.stat().st_size}
            # a clear win only: the fused ops may leave weights in float (a bigger file)
            wins = timed.ms["fused"] < FUSED_MARGIN * timed.ms["unfused"]
            kept = "fused" if wins and sizes["fused"] <= 1.02 * sizes["unfused"] else "unfused"
            details["transformer_fusion"] = {
                "fusions": fusions,
                "how": "both quantized and timed side by side at batch 1 on this CPU; the "
                f"fused kept only if over {100 * (1 - FUSED_MARGIN):.0f} % faster and no larger",
                "batch1_ms": {k: round(v, 4) for k, v in timed.ms.items()},
                "timed_between": timed.timed_between,
                "size_bytes": sizes,
                "kept": kept,
            }
            if kept == "fused":
                shutil.copyfile(candidate, out)
        candidate.unlink(missing_ok=True)
    details.update(
        {
            "method": "onnxruntime quantize_dynamic",
            "ops": DYNAMIC_OPS,
            "per_channel": config.per_channel,
        }
    )
    notes.append(
        "dynamic int8 quantizes MatMul/Gemm/Attention weights and embedding tables (Gather); "
        "convolutions stay FP32 (ORT's dynamic ConvInteger is slower than FP32 convolution on CPU)"
    )


def fp16(
    artifact: Artifact,
    config: OnnxExport,
    ctx: StepContext,
    out: Path,
    notes: list[str],
    details: dict[str, Any],
) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(fp32_onnx(artifact, config, ctx)))
    try:
        with quiet():
            half = convert_float_to_float16(
                model, keep_io_types=True, op_block_list=config.keep_fp32 or None
            )
        onnx.save(half, str(out))
    except Exception as e:
        raise StepError(f"fp16 conversion failed: {first_line(e)}") from None
    details.update({"method": "onnxruntime.transformers.float16", "io": "float32 (kept)"})
