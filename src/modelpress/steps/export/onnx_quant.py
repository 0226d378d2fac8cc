"""ONNX Runtime quantization: int8 (static QDQ, calibrated), int8-dynamic, fp16.

Static int8 calibrates on the calibration split (MinMax, Entropy or Percentile), per channel by
default, on a graph first rewritten so that hardswish, squeeze-excite gates and spatial means
have int8 kernels (``onnx_int8_graph``; recorded under ``graph_rewrites``). The activation
type is measured, not assumed: with ``activation_type: auto`` both
uint8 and int8 activations are built and timed at batch 1 on this CPU and the faster is kept
(on x86 with VNNI, unsigned activations use the fast u8×s8 kernels); the record keeps both
timings. When ``targets.max_accuracy_drop`` is set and the int8 model loses more, layers are
ranked by sensitivity (accuracy regained on the calibration split when that one layer stays
FP32) and the most sensitive are kept FP32, one by one, until the bound holds on validation.

Dynamic int8 and fp16: ``onnx_dynamic.py``.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.core.artifact import Artifact
from modelpress.core.context import StepContext
from modelpress.errors import StepError, first_line
from modelpress.sources.data import Split
from modelpress.steps.export.onnx import fp32_onnx
from modelpress.steps.export.onnx_int8_graph import (
    absorb_scalar_muls,
    compact_names,
    rewrite_for_int8,
)
from modelpress.steps.quiet import quiet

if TYPE_CHECKING:
    from modelpress.steps.export import OnnxExport

QUANTIZABLE = ("Conv", "Gemm", "MatMul")  # ops whose weights int8 quantization shrinks


def preprocess(src: Path, work: Path, notes: list[str]) -> Path:
    """ORT's recommended pre-processing (shape inference, graph optimisation) before quantizing."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = work / "model-fp32-pre.onnx"
    try:
        # ORT's symbolic shape inference saves a graph it gives up on into the current folder
        # (sym_shape_infer_temp.onnx and a 12 MB <uuid>.data of its weights), then falls back:
        # run it in a scratch folder, removed after, with absolute paths in and out
        with (
            quiet(),
            tempfile.TemporaryDirectory(prefix="modelpress-ort-") as scratch,
            contextlib.chdir(scratch),
        ):
            quant_pre_process(str(src.resolve()), str(out.resolve()))
        return out
    except Exception as e:
        notes.append(f"quant_pre_process skipped: {first_line(e, 160)}")
        return src


def _int8_ready(src: Path, work: Path, notes: list[str], details: dict[str, Any]) -> Path:
    """The graph rewritten so activations ORT has no int8 kernel for run in int8 too (see
    onnx_int8_graph); the pre-processed graph as it was when nothing applies or a rewrite fails."""
    out = work / "model-fp32-int8-ready.onnx"
    try:
        done = rewrite_for_int8(str(src), str(out))
    except Exception as e:
        notes.append(f"int8 graph rewrites skipped: {first_line(e, 160)}")
        return src
    details["graph_rewrites"] = {k: v for k, v in done.items() if v}
    return out if any(done.values()) else src


def _check_calibration(split: Split, model_path: Path, where: str) -> None:
    """Calibration arrays must match the model's inputs in rank, sample shape and dtype class."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != len(split.inputs):
        raise StepError(
            f"{where}: calibration data has {len(split.inputs)} inputs, the model {len(inputs)}"
        )
    for spec, array in zip(inputs, split.inputs, strict=True):
        dims = [
            d.dim_value if d.HasField("dim_value") else None
            for d in spec.type.tensor_type.shape.dim
        ]
        want_float = spec.type.tensor_type.elem_type in (1, 10, 11)
        fits = len(dims) == array.ndim and all(
            d is None or d == a for d, a in zip(dims[1:], array.shape[1:], strict=True)
        )
        if not fits or want_float != np.issubdtype(array.dtype, np.floating):
            raise StepError(
                f"{where}: calibration samples for input '{spec.name}' are {array.dtype} "
                f"{tuple(array.shape[1:])}, the model wants {'float' if want_float else 'integer'} "
                f"{tuple(dims[1:])}; calibrate with data shaped like the model's input"
            )


class _Reader:
    """Feeds the calibration split to ORT's calibrator in batches (one at a time if fixed)."""

    def __init__(self, split: Split, names: list[str], batch: int) -> None:
        self.batches = [
            {n: a for n, a in zip(names, arrays, strict=True)} for arrays, _ in split.batches(batch)
        ]
        self.i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return self.batches[self.i - 1]

    def rewind(self) -> None:
        self.i = 0


def _input_names_and_batch(path: Path) -> tuple[list[str], int]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    first = sess.get_inputs()[0].shape[0]
    return [i.name for i in sess.get_inputs()], first if isinstance(first, int) else 32


def node_names(path: Path, keep: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(quantizable (name, op) pairs, node names to exclude for ``keep`` names/op types)."""
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    excluded = [n.name for n in nodes if n.name in keep or n.op_type in keep]
    candidates = [
        (n.name, n.op_type) for n in nodes if n.op_type in QUANTIZABLE and n.name not in excluded
    ]
    return candidates, excluded


class _Static:
    """One calibrated quantization setting, re-runnable with other layers kept FP32."""

    def __init__(self, src: Path, split: Split, config: OnnxExport, work: Path) -> None:
        from onnxruntime.quantization import CalibrationMethod

        self.src, self.config, self.work = src, config, work
        names, batch = _input_names_and_batch(src)
        # Histogram calibrators stack per-batch arrays, so they need equal batches: use 1.
        self.reader = _Reader(split, names, batch if config.calibration == "minmax" else 1)
        self.method = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }[config.calibration]
        self.count = 0
        self.absorbed = 0  # scalar multiplications folded into quantization scales, last build

    def build(self, activation: str, exclude: list[str]) -> Path:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        self.count += 1
        out = self.work / f"candidate-{self.count}.onnx"
        self.reader.rewind()
        try:
            with quiet():
                quantize_static(
                    str(self.src),
                    str(out),
                    self.reader,
                    quant_format=QuantFormat.QDQ,
                    per_channel=self.config.per_channel,
                    activation_type=QuantType.QUInt8 if activation == "uint8" else QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=exclude,
                    calibrate_method=self.method,
                )
        except Exception as e:
            raise StepError(f"onnxruntime quantize_static failed: {first_line(e)}") from None
        self.absorbed = absorb_scalar_muls(str(out))
        return out


def _outputs(path: Path, split: Split, ctx: StepContext) -> list[np.ndarray]:
    """A candidate file's outputs on ``split``, in ORT (the run's evaluation, unscored)."""
    art = Artifact("candidate", "onnx", ctx.input_specs, path=path)
    return ctx.evaluate(art, split, score=False).outputs


def _score(path: Path, split: Split, ctx: StepContext, reference: list[np.ndarray]) -> float:
    """The task's primary metric of a candidate on a split (fidelity: against the FP32 model),
    through the run's evaluation of a split."""
    art = Artifact("candidate", "onnx", ctx.input_specs, path=path)
    return float(ctx.evaluate(art, split, reference=reference).metrics[ctx.task.primary])


def batch1_ms_side_by_side(paths: dict[str, Path], ctx: StepContext, what: str) -> Any:
    """Median batch-1 ms of each candidate file, timed side by side under the run's timing
    guard (``.ms``, ``.timed_between``)."""
    arts = {k: Artifact("timing", "onnx", ctx.input_specs, path=p) for k, p in paths.items()}
    return ctx.time_side_by_side(arts, what)


def _stem_conv(path: Path) -> str | None:
    """The convolution that reads a graph input directly (an image model's stem), if any."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inputs = {i.name for i in graph.input}
    return next(
        (n.name for n in graph.node if n.op_type == "Conv" and n.input and n.input[0] in inputs),
        None,
    )


def _stem_fp32_if_asked(
    src: Path, config: OnnxExport, exclude: list[str], details: dict[str, Any]
) -> list[str]:
    """``exclude`` plus the stem convolution when the recipe asks for it in FP32 (``stem:
    fp32``). ``auto`` keeps it int8 in ORT: its int8 kernel is the slow one over 3 input
    channels (MobileNetV3-Small at 224×224: 190 against 83 µs), but a float stem needs a
    QuantizeLinear over its larger output instead, and whole models measured within 2 % either
    way (0.87× → 0.89× FP32 at 224×224, 1.38× → 1.40× at 64×64, blocks of 100 calls): not
    worth a second calibration. TFLite, where the float stem wins, measures it
    (steps/export/tflite.py)."""
    stem = _stem_conv(src)
    if stem is None or stem in exclude or config.stem != "fp32":
        return exclude
    details["stem"] = {"node": stem, "kept": "fp32", "how": "asked in the recipe"}
    return [*exclude, stem]


def _choose_activation(
    static: _Static,
    config: OnnxExport,
    exclude: list[str],
    ctx: StepContext,
    details: dict[str, Any],
) -> tuple[str, Path]:
    if config.activation_type != "auto":
        details["activation_type"] = {
            "chosen": config.activation_type,
            "how": "asked in the recipe",
        }
        return config.activation_type, static.build(config.activation_type, exclude)
    built = {act: static.build(act, exclude) for act in ("uint8", "int8")}
    timed = batch1_ms_side_by_side(built, ctx, f"{config.display_name}: uint8 vs int8")
    chosen = min(timed.ms, key=timed.ms.__getitem__)
    details["activation_type"] = {
        "chosen": chosen,
        "how": "both built, timed side by side at batch 1 on this CPU, faster kept",
        "batch1_ms": {k: round(v, 4) for k, v in timed.ms.items()},
        "timed_between": timed.timed_between,
    }
    return chosen, built[chosen]


def _fallback(
    static: _Static,
    activation: str,
    path: Path,
    exclude: list[str],
    fp32: Path,
    ctx: StepContext,
    details: dict[str, Any],
) -> Path:
    """Keep the most sensitive layers FP32 until the primary metric drop is within the bound.

    Sensitivity of a layer: how much the mean |Δ| between the int8 and FP32 outputs on the
    calibration split shrinks when that one layer stays FP32 (continuous, needs no labels).
    """
    bound = ctx.recipe.targets.max_accuracy_drop
    if bound is None or ctx.baseline is None:
        return path
    key = ctx.task.primary
    base_value = ctx.baseline["metrics"].get(key)
    if base_value is None:
        return path
    val, cal = ctx.data.validation, ctx.data.calibration
    ref_val = _outputs(fp32, val, ctx)

    def drop(p: Path) -> float:
        return 100.0 * ctx.task.worse_by(_score(p, val, ctx, ref_val), base_value)

    first = drop(path)
    record: dict[str, Any] = {
        "bound_pt": bound,
        "initial_drop_pt": round(first, 4),
        "kept_fp32": [],
    }
    details["fallback"] = record
    if first <= bound:
        record |= {"needed": False, "met": True, "final_drop_pt": round(first, 4)}
        return path
    record["needed"] = True
    record["ranking"] = (
        "layers ranked by how much keeping each one alone in FP32 reduces the "
        "mean |Δ| to the FP32 outputs on the calibration split"
    )
    candidates, _ = node_names(static.src, [*exclude])
    ref_cal = _outputs(fp32, cal, ctx)

    def error(p: Path) -> float:
        got = _outputs(p, cal, ctx)
        return float(np.mean([np.abs(g - r).mean() for g, r in zip(got, ref_cal, strict=True)]))

    full = error(path)
    ranked = []
    with ctx.observer.progress("layer sensitivity", len(candidates)) as advance:
        for name, op in candidates:
            ranked.append((full - error(static.build(activation, [*exclude, name])), name, op))
            advance()
    ranked.sort(key=lambda r: -r[0])
    kept: list[str] = []
    current, current_drop = path, first
    for reduction, name, op in ranked:
        kept.append(name)
        record["kept_fp32"].append({"node": name, "op": op, "error_reduction": round(reduction, 6)})
        current = static.build(activation, [*exclude, *kept])
        current_drop = drop(current)
        if current_drop <= bound:
            break
    record["final_drop_pt"] = round(current_drop, 4)
    record["met"] = current_drop <= bound
    record["layers_ranked"] = len(ranked)
    return current


def _static_int8(
    artifact: Artifact,
    config: OnnxExport,
    ctx: StepContext,
    out: Path,
    notes: list[str],
    details: dict[str, Any],
) -> None:
    work = ctx.work_dir()
    fp32 = fp32_onnx(artifact, config, ctx)
    pre = _int8_ready(preprocess(fp32, work, notes), work, notes, details)
    split = ctx.calibration(config.calibration_samples, config.display_name)
    _check_calibration(split, pre, config.display_name)
    _, by_recipe = node_names(pre, config.keep_fp32)
    exclude = _stem_fp32_if_asked(pre, config, by_recipe, details)
    if ctx.task.float_tail and config.float_tail:
        import onnx

        from modelpress.steps.float_tail import describe, onnx_tail

        tail = onnx_tail(onnx.load(str(pre), load_external_data=False))
        exclude = [*exclude, *(n.name for n in tail if n.name not in exclude)]
        details["float_tail"] = describe([n.op_type for n in tail], ctx.task.float_tail)
    static = _Static(pre, split, config, work)
    with ctx.observer.progress(f"{config.display_name}: calibrate and quantize", None):
        activation, path = _choose_activation(static, config, exclude, ctx, details)
    if config.fallback:
        path = _fallback(static, activation, path, exclude, fp32, ctx, details)
    if static.absorbed:
        details.setdefault("graph_rewrites", {})["scalar_mul_into_scale"] = static.absorbed
    shutil.copyfile(path, out)
    for stale in work.glob("candidate-*.onnx"):
        stale.unlink()
    details.update(
        {
            "method": "onnxruntime quantize_static (QDQ)",
            "calibration": config.calibration,
            "calibration_samples": len(split),
            "per_channel": config.per_channel,
            "weight_type": "int8",
            "kept_fp32_by_recipe": by_recipe,
        }
    )


def quantize_onnx(artifact: Artifact, config: OnnxExport, ctx: StepContext, out: Path) -> Artifact:
    notes: list[str] = []
    details: dict[str, Any] = {}
    from modelpress.steps.export.onnx_dynamic import dynamic_int8, fp16

    build = {"int8": _static_int8, "int8-dynamic": dynamic_int8, "fp16": fp16}[config.precision]
    out.parent.mkdir(parents=True, exist_ok=True)
    build(artifact, config, ctx, out, notes, details)
    if config.precision != "fp16":  # int8 files: the quantizer's long names are a real share
        details["names_compacted_bytes"] = compact_names(str(out))
    return artifact.child(
        "onnx",
        config.precision,
        out,
        config.display_name,
        notes=notes,
        details=details,
    )
