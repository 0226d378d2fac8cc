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
- any other ``HardSigmoid(x)`` (hardswish's) → ``α · Clip(x + β/α, 0, 1/α)``: the ``Add`` runs
  as ``QLinearAdd``, the clip folds into its output range, and after quantization
  :func:`absorb_scalar_muls` folds the multiplication by ``α`` into that output's quantization
  scale: hardswish becomes two int8 kernels (``QLinearAdd``, ``QLinearMul``).
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


def _whole_window_pool_to_gap(model: Any) -> int:
    """An ``AveragePool`` whose window covers its whole unpadded input (transformers'
    EfficientNet pools its 2×2 map with a 2560×2560 kernel and ceil_mode) → the
    ``GlobalAveragePool`` it computes. Its quantized kernel does not average what the float one
    does: the INT8 EfficientNet answered one class for every image."""
    from onnx import helper

    dims = {
        v.name: [
            d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim
        ]
        for v in [*model.graph.value_info, *model.graph.input]
    }
    done = 0
    for i, node in enumerate(model.graph.node):
        if node.op_type != "AveragePool":
            continue
        shape = dims.get(node.input[0]) or []
        kernel = list(_attr(node, "kernel_shape", []))
        pads = list(_attr(node, "pads", [0] * 2 * len(kernel)))
        spatial = shape[2:]
        if (
            len(shape) != 4
            or len(kernel) != 2
            or any(p != 0 for p in pads)
            or _attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID")
            or any(d is None or k < d for k, d in zip(kernel, spatial, strict=True))
        ):
            continue
        gap = helper.make_node(
            "GlobalAveragePool", [node.input[0]], list(node.output), name=node.name or f"gap_{i}"
        )
        model.graph.node[i].CopyFrom(gap)
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
        elif alpha > 0:  # clip(αx + β, 0, 1) = α · clip(x + β/α, 0, 1/α)
            shifted, clipped = f"{base}_shifted", f"{base}_clipped"
            shift, top = const(f"{base}_shift", beta / alpha), const(f"{base}_top", 1.0 / alpha)
            new_nodes += [
                helper.make_node("Add", [src, shift], [shifted], name=f"{base}_add"),
                helper.make_node("Clip", [shifted, lo, top], [clipped], name=f"{base}_clip"),
                helper.make_node(
                    "Mul", [clipped, const(f"{base}_alpha", alpha)], [out], name=f"{base}_mul"
                ),
            ]
            decomposed += 1
        else:
            new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(extra_inits)
    return folded, decomposed


def rewrite_for_int8(src: str, dst: str, *, pooling: bool = True) -> dict[str, int]:
    """Write the int8-friendly graph of ``src`` to ``dst``; return what was rewritten.
    ``pooling=False`` leaves spatial means as they are (OpenVINO has int8 ReduceMean)."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(src))
    rank4 = {
        v.name
        for v in [*model.graph.value_info, *model.graph.input]
        if len(v.type.tensor_type.shape.dim) == 4
    }
    gap = _spatial_mean_to_gap(model, rank4) if pooling else 0
    whole = _whole_window_pool_to_gap(model)
    folded, decomposed = _fold_hardsigmoid(model)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    return {
        "reduce_mean_to_global_average_pool": gap,
        "whole_window_average_pool_to_global": whole,
        "hardsigmoid_folded_into_conv": folded,
        "hardsigmoid_to_mul_add_clip": decomposed,
    }


def _scalar(name: str, inits: dict[str, Any], producer: dict[str, Any]) -> float | None:
    """The value of a scalar constant: an initializer, or one dequantized from initializers."""
    from onnx import numpy_helper

    if name in inits:
        value = numpy_helper.to_array(inits[name])
        return float(value) if value.size == 1 else None
    node = producer.get(name)
    if node is None or node.op_type != "DequantizeLinear":
        return None
    if not all(i in inits for i in node.input if i):
        return None
    q, scale, *zero = (numpy_helper.to_array(inits[i]) for i in node.input if i)
    if q.size != 1:
        return None
    z = float(zero[0]) if zero else 0.0
    return (float(q) - z) * float(scale)


def absorb_scalar_muls(path: str) -> int:
    """In a QDQ graph, fold ``Q(v) → DQ → Mul(c) → Q(y)`` (``c`` a positive scalar constant) into
    one ``Q(v)`` whose scale is ``y``'s scale / ``c``: the codes are the same, one int8 kernel
    and two conversions fewer. Rewrites ``path`` in place; returns how many it folded."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    graph = model.graph
    inits = _initializers(graph)
    uses = _consumers(graph)
    producer = {o: n for n in graph.node for o in n.output}
    consumer: dict[str, Any] = {}
    for node in graph.node:
        for name in node.input:
            consumer.setdefault(name, node)
    dropped: set[int] = set()
    folded = 0
    for mul in graph.node:
        if mul.op_type != "Mul" or id(mul) in dropped:
            continue
        consts = [(n, _scalar(n, inits, producer)) for n in mul.input]
        consts = [(n, v) for n, v in consts if v is not None]
        if len(consts) != 1:
            continue
        const_name, c = consts[0]
        data = next(n for n in mul.input if n != const_name)
        const_dq = producer.get(const_name)  # the quantizer quantizes the constant too
        dq1 = producer.get(data)
        q1 = producer.get(dq1.input[0]) if dq1 is not None else None
        q2 = consumer.get(mul.output[0])
        if (
            c <= 0
            or dq1 is None
            or id(dq1) in dropped
            or dq1.op_type != "DequantizeLinear"
            or q1 is None
            or q1.op_type != "QuantizeLinear"
            or q2 is None
            or q2.op_type != "QuantizeLinear"
            or id(q1) in dropped
            or id(q2) in dropped
            or len(q1.input) < 3
            or uses[data] != 1
            or uses[dq1.input[0]] != 1
            or uses[mul.output[0]] != 1
            or len(q2.input) < 3
            or q2.input[1] not in inits
        ):
            continue
        scale = numpy_helper.to_array(inits[q2.input[1]])
        new_scale = f"{q2.input[1]}_over_{folded}"
        graph.initializer.append(
            numpy_helper.from_array((scale / c).astype(scale.dtype), new_scale)
        )
        q1.input[1], q1.input[2] = new_scale, q2.input[2]
        q1.output[0] = q2.output[0]
        dropped |= {id(dq1), id(mul), id(q2)}
        if const_dq is not None and uses[const_name] == 1:
            dropped.add(id(const_dq))
        folded += 1
    if folded:
        kept = [n for n in graph.node if id(n) not in dropped]
        del graph.node[:]
        graph.node.extend(kept)
        onnx.save(model, path)
    return folded


def _drop_bias_zero_points(graph) -> None:
    """A DequantizeLinear of an int32 constant (a quantized bias) with an all-zero zero point:
    the zero point is optional there (0 by default) and the quantizer writes one int32 per
    channel, 4 bytes per output channel of every convolution. ORT fuses the same kernels."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) != 3:
            continue
        x, zp = inits.get(node.input[0]), inits.get(node.input[2])
        if x is None or zp is None or x.data_type != 6:  # 6: INT32
            continue
        if not numpy_helper.to_array(zp).any():
            del node.input[2]


def compact_names(path: str) -> int:
    """Give every node and every internal tensor a short name (``t12``; nodes none), keeping the
    graph's input and output names: the QDQ quantizer's names (``…_QuantizeLinear_Output``) are
    a sizeable share of a small INT8 file. Initializers no node reads (scales of folded Q/DQ
    pairs) and the all-zero zero points of int32 biases are dropped. Rewrites ``path`` in
    place; returns bytes saved."""
    import os

    import onnx

    before = os.path.getsize(path)
    model = onnx.load(path)
    graph = model.graph
    keep = {v.name for v in [*graph.input, *graph.output]}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for init in graph.initializer:
        init.name = short(init.name)
    for node in graph.node:
        node.name = ""
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    del graph.value_info[:]  # shapes are re-inferred at load; they only cost bytes here
    _drop_bias_zero_points(graph)
    used = {n for node in graph.node for n in node.input} | keep
    live = [init for init in graph.initializer if init.name in used]
    if len(live) < len(graph.initializer):  # scales left behind by folded Q/DQ pairs
        del graph.initializer[:]
        graph.initializer.extend(live)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return before - os.path.getsize(path)
