"""Rewrites of an FP32 ONNX graph, before static INT8 quantization, so that ONNX Runtime runs
mobile architectures (hardswish, squeeze-excite) in int8 end to end instead of hopping between
int8 and float around every activation.

ORT has no int8 kernel for HardSigmoid (hardswish reaches the quantizer as ``x · HardSigmoid(x)``
after ``quant_pre_process``) and none for ReduceMean: each such op runs in float between a
DequantizeLinear and a QuantizeLinear, three kernels where FP32 fuses the activation into its
convolution. On MobileNetV3-Small at 64×64 that made the INT8 graph 207 kernels against FP32's
115, and slower. The rewrites, each exact in float:

- ``ReduceMean`` over the spatial axes of a 4-D tensor (keepdims) → ``GlobalAveragePool``
  (ORT fuses it as ``QLinearGlobalAveragePool``);
- ``HardSigmoid(conv(x))`` where nothing else reads the convolution's output: ``α, β`` folded
  into the convolution's weights and bias (``α·W``, ``α·b + β``) and the activation becomes
  ``Clip(0, 1)``, which the QDQ quantizer removes into the convolution's output range: the
  squeeze-excite gate costs nothing;
- any other ``HardSigmoid(x)`` → ``Clip(x·α + β, 0, 1)``: ``Mul`` and ``Add`` by constants run
  as ``QLinearMul`` / ``QLinearAdd`` and the clip again folds into their output range.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _initializers(graph: Any) -> dict[str, Any]:
    return {i.name: i for i in graph.initializer}


def _consumers(graph: Any) -> Counter[str]:
    uses: Counter[str] = Counter(name for node in graph.node for name in node.input if name)
    uses.update(o.name for o in graph.output)
    return uses


def _axes(node: Any, inits: dict[str, Any]) -> list[int] | None:
    from onnx import numpy_helper

    if len(node.input) > 1 and node.input[1]:
        if node.input[1] not in inits:
            return None
        return [int(a) for a in numpy_helper.to_array(inits[node.input[1]]).reshape(-1)]
    axes = _attr(node, "axes", None)
    return list(axes) if axes is not None else None


def _spatial_mean_to_gap(model: Any, rank4: set[str]) -> int:
    from onnx import helper

    graph = model.graph
    inits = _initializers(graph)
    done = 0
    for i, node in enumerate(graph.node):
        if node.op_type != "ReduceMean" or not _attr(node, "keepdims", 1):
            continue
        axes = _axes(node, inits)
        if node.input[0] not in rank4 or axes is None or sorted(a % 4 for a in axes) != [2, 3]:
            continue
        gap = helper.make_node(
            "GlobalAveragePool", [node.input[0]], list(node.output), name=node.name or f"gap_{i}"
        )
        graph.node[i].CopyFrom(gap)
        done += 1
    return done


def _fold_hardsigmoid(model: Any) -> tuple[int, int]:
    """(folded into a convolution, decomposed into Mul/Add/Clip)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = _initializers(graph)
    uses = _consumers(graph)
    producer = {o: n for n in graph.node for o in n.output}
    folded = decomposed = 0
    new_nodes = []
    extra_inits = []

    def const(name: str, value: float) -> str:
        extra_inits.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
        return name

    for node in graph.node:
        if node.op_type != "HardSigmoid":
            new_nodes.append(node)
            continue
        alpha = float(_attr(node, "alpha", 0.2))
        beta = float(_attr(node, "beta", 0.5))
        src, out = node.input[0], node.output[0]
        base = node.name or out
        conv = producer.get(src)
        weight = conv.input[1] if conv is not None and conv.op_type == "Conv" else None
        bias = conv.input[2] if conv is not None and len(conv.input) > 2 else None
        foldable = (
            weight in inits
            and (bias is None or bias in inits)
            and uses[src] == 1
            and uses[weight] == 1
            and (bias is None or uses[bias] == 1)
        )
        lo, hi = const(f"{base}_clip_min", 0.0), const(f"{base}_clip_max", 1.0)
        if foldable:
            w = numpy_helper.to_array(inits[weight]).astype(np.float32)
            inits[weight].CopyFrom(numpy_helper.from_array(alpha * w, weight))
            out_channels = w.shape[0]
            b = (
                numpy_helper.to_array(inits[bias]).astype(np.float32)
                if bias is not None
                else np.zeros(out_channels, np.float32)
            )
            b = alpha * b + beta
            if bias is None:
                bias = f"{base}_folded_bias"
                extra_inits.append(numpy_helper.from_array(b, bias))
                conv.input.append(bias)
            else:
                inits[bias].CopyFrom(numpy_helper.from_array(b, bias))
            new_nodes.append(helper.make_node("Clip", [src, lo, hi], [out], name=f"{base}_clip"))
            folded += 1
        else:
            scaled, shifted = f"{base}_scaled", f"{base}_shifted"
            a, b_ = const(f"{base}_alpha", alpha), const(f"{base}_beta", beta)
            new_nodes += [
                helper.make_node("Mul", [src, a], [scaled], name=f"{base}_mul"),
                helper.make_node("Add", [scaled, b_], [shifted], name=f"{base}_add"),
                helper.make_node("Clip", [shifted, lo, hi], [out], name=f"{base}_clip"),
            ]
            decomposed += 1
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(extra_inits)
    return folded, decomposed


def rewrite_for_int8(src: str, dst: str) -> dict[str, int]:
    """Write the int8-friendly graph of ``src`` to ``dst``; return what was rewritten."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(src))
    rank4 = {
        v.name
        for v in [*model.graph.value_info, *model.graph.input]
        if len(v.type.tensor_type.shape.dim) == 4
    }
    gap = _spatial_mean_to_gap(model, rank4)
    folded, decomposed = _fold_hardsigmoid(model)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    return {
        "reduce_mean_to_global_average_pool": gap,
        "hardsigmoid_folded_into_conv": folded,
        "hardsigmoid_to_mul_add_clip": decomposed,
    }
