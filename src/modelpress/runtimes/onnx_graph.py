"""What an ONNX int8 model computes in: the QDQ graph of the file, and the graph ORT runs.

The file: an op runs on int8 when every data input comes through a DequantizeLinear (the QDQ
form ``quantize_static`` writes; a QOperator file says it with its op types). What ORT runs: the
session's optimized graph (saved with ``optimized_model_filepath`` at the runtime's own level),
whose kernels ORT's profiler lists with their input types: the QDQ groups it fused into integer
kernels (QLinearConv, QLinearMul, QGemm…) and what it left in float between a DequantizeLinear
and a QuantizeLinear. Multiply-accumulates are counted on the file's graph (ONNX shape
inference); those whose weight an integer kernel of the optimized graph consumes run in int8, the
rest in float (ORT keeps the name of a weight it fuses into an integer kernel, and renames the
ones it reorders or folds for its float kernels).
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.runtimes.base import GraphOp, GraphView, OpKind

QUANTIZE = {"QuantizeLinear", "DynamicQuantizeLinear"}
DEQUANTIZE = {"DequantizeLinear"}
# Data movement, layout reorders and shape bookkeeping: no multiply or add on the values.
OTHER = {
    "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Shape", "Size",
    "Concat", "Split", "Slice", "Gather", "GatherElements", "Expand", "Tile", "Pad", "Cast",
    "DepthToSpace", "SpaceToDepth", "ConstantOfShape", "ReorderInput", "ReorderOutput",
}  # fmt: skip
# ORT's integer kernels besides QLinear*: they take quantized tensors whatever their inputs say.
_INTEGER_KERNELS = {
    "QGemm", "QAttention", "QEmbedLayerNormalization", "MatMulInteger", "ConvInteger",
    "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM",
}  # fmt: skip
_INTEGER_TYPES = {"int8", "uint8", "int16", "uint16", "int4", "uint4"}
_FLOAT_TYPES = {"float", "float16", "bfloat16", "double"}
_CONV = {"Conv", "ConvInteger", "QLinearConv"}
_MATMUL = {"MatMul", "MatMulInteger", "QLinearMatMul"}
_ELEM_TYPES = {1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
               7: "int64", 9: "bool", 10: "float16", 11: "double", 16: "bfloat16"}  # fmt: skip
_WARMUP = 3


def integer_kernel(op_type: str) -> bool:
    return op_type.startswith("QLinear") or op_type in _INTEGER_KERNELS


def op_kind(op_type: str, dtype: str | None) -> OpKind:
    """An op by its type and the element type of its first input (None: unknown)."""
    if op_type in QUANTIZE:
        return "quantize"
    if op_type in DEQUANTIZE:
        return "dequantize"
    if op_type in OTHER:
        return "other"
    if integer_kernel(op_type) or dtype in _INTEGER_TYPES:
        return "int8"
    if dtype is None or dtype in _FLOAT_TYPES:
        return "float"
    return "other"  # index and shape arithmetic (int64, int32, bool)


def _shape(value_info: Any) -> list[int]:
    """Dimensions of a typed value; a free dimension (the batch) counts as 1."""
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in dims]


def _macs(node: Any, shapes: dict[str, list[int]], weight: list[int] | None) -> int:
    """Multiply-accumulates of a conv / matmul / gemm node for its inferred shapes (0: not one,
    or shapes unknown)."""
    out = shapes.get(node.output[0]) if node.output else None
    if out is None or not weight:
        return 0
    op = node.op_type
    if op in _CONV:  # weight (M, C/group, kH, kW): each output element sums C/group·kH·kW
        return math.prod(out) * math.prod(weight[1:])
    if op == "ConvTranspose":  # weight (C, M/group, kH, kW): each input element spreads out
        x = shapes.get(node.input[0])
        return math.prod(x) * math.prod(weight[1:]) if x else 0
    if op == "Gemm":
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        return math.prod(out) * (weight[1] if trans_b and len(weight) > 1 else weight[0])
    if op in _MATMUL:  # B (…, K, N)
        return math.prod(out) * (weight[-2] if len(weight) > 1 else weight[0])
    return 0


def param_count(graph: Any) -> int:
    """Weights and biases of an ONNX graph in any precision; quantization scales, zero points
    and shape constants are not parameters."""
    qparams = {
        name
        for node in graph.node
        if node.op_type in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")
        for name in node.input[1:]
    }
    weights = (t for t in graph.initializer if t.name not in qparams and t.data_type != 7)
    return int(sum(math.prod(t.dims) for t in weights))  # data_type 7: int64 (shapes)


def file_param_count(path: Path) -> int:
    """``param_count`` of an ONNX file's graph (structure and initializers' shapes only)."""
    import onnx

    return param_count(onnx.load(str(path), load_external_data=False).graph)


def file_view(path: Path) -> tuple[GraphView, dict[str, int], int]:
    """(the file's graph, MACs by weight initializer, all MACs) of an ONNX model."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    with contextlib.suppress(Exception):  # without shapes the ops still count; MACs read 0
        model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    inits = {t.name: list(t.dims) for t in graph.initializer}
    consts = {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    values = [*graph.value_info, *graph.input, *graph.output]
    shapes = {v.name: _shape(v) for v in values if v.type.tensor_type.HasField("shape")}
    dtypes = {v.name: _ELEM_TYPES.get(v.type.tensor_type.elem_type) for v in values}
    dequantized = {n.output[0]: n.input[0] for n in graph.node if n.op_type in DEQUANTIZE}
    ops: list[GraphOp] = []
    by_weight: dict[str, int] = {}
    total = int8 = 0
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        data = [i for i in node.input if i and i not in inits and i not in consts]
        through_dq = bool(data) and all(i in dequantized for i in data)
        dtype = "int8" if through_dq else (dtypes.get(data[0]) if data else None)
        kind = op_kind(node.op_type, dtype)
        ops.append(GraphOp(node.op_type, kind))
        w_index = 3 if node.op_type.startswith("QLinear") else 1
        if len(node.input) <= w_index:
            continue
        name = node.input[w_index]
        root = dequantized.get(name, name)  # a QDQ weight: the int8 initializer behind its DQ
        macs = _macs(node, shapes, inits.get(root) or shapes.get(name))
        if macs:
            total += macs
            by_weight[root] = by_weight.get(root, 0) + macs
            int8 += macs if kind == "int8" else 0
    view = GraphView(f"{Path(path).name} (the file's graph)", ops, int8, total - int8)
    return view, by_weight, total


def _profiled(events: list[dict[str, Any]]) -> list[GraphOp]:
    """One op per kernel node the profiler saw, in order, with its median time over the runs
    after the warm-up (a median: one stall of a busy machine must not make an op look slow)."""
    nodes: dict[str, dict[str, Any]] = {}
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        args = event.get("args") or {}
        node = nodes.setdefault(name, {"op": args.get("op_name", "?"), "us": []})
        inputs = args.get("input_type_shape") or [{}]
        node["dtype"] = next(iter(inputs[0]), None) if inputs and inputs[0] else None
        node["us"].append(float(event.get("dur", 0)))
    return [
        GraphOp(n["op"], op_kind(n["op"], n["dtype"]), float(np.median(n["us"][_WARMUP:])) / 1000)
        for n in nodes.values()
        if len(n["us"]) > _WARMUP
    ]


def runtime_view(
    path: Path,
    options: Any,
    feed: dict[str, np.ndarray],
    by_weight: dict[str, int],
    total: int,
    runs: int = 20,
) -> GraphView:
    """The graph an ORT session with ``options`` runs, profiled over ``runs`` runs of ``feed``
    (after a warm-up), with the int8 share of the file's MACs (``by_weight``, ``total``)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="modelpress-ort-") as tmp:
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for _ in range(_WARMUP + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
        optimized = onnx.load(options.optimized_model_filepath, load_external_data=False)
    ops = _profiled(events)
    fused = {i for n in optimized.graph.node if integer_kernel(n.op_type) for i in n.input if i}
    int8 = sum(macs for weight, macs in by_weight.items() if weight in fused)
    level = str(options.graph_optimization_level).rsplit(".", 1)[-1]
    source = f"ORT's optimized graph ({level}) and its profiler, {runs} runs"
    return GraphView(source, ops, int8, total - int8)
