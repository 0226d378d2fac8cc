"""OpenVINO runtime (format ``openvino``), CPU plugin, latency hint, fixed thread count."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.errors import ModelSourceError, first_line
from modelpress.extras import require
from modelpress.runtimes.base import GraphOp, GraphView, OpKind, Runtime

_INTEGER = {"i8", "u8", "i16", "u16", "i4", "u4"}
_FLOAT = {"f32", "f16", "bf16", "f64"}
# Data movement, layout reorders and shape bookkeeping: no multiply or add on the values.
_OTHER = {
    "Reorder", "Reshape", "Transpose", "Concatenation", "Concat", "Split", "VariadicSplit",
    "Gather", "StridedSlice", "Slice", "Pad", "Broadcast", "ShapeOf", "Squeeze", "Unsqueeze",
    "Tile", "DepthToSpace", "SpaceToDepth", "Convert",
}  # fmt: skip
_NOT_OPS = {"Input", "Output", "Const", "Parameter", "Result", "Constant"}
_WARMUP = 3


def _dims(shape: Any) -> list[int]:
    """A (partial) shape's dimensions; a dynamic one (the batch) counts as 1."""
    return [d.get_length() if d.is_static else 1 for d in shape]


def _macs(kind: str, ins: list[list[int]], out: list[int], transpose_a: bool = False) -> int:
    """Multiply-accumulates of a convolution / fully connected / matmul node from its shapes."""
    if len(ins) < 2 or not ins[1] or not out:
        return 0
    w = ins[1]
    if kind in ("Convolution", "GroupConvolution"):  # (O, I, kH, kW) or (G, O/G, I/G, kH, kW)
        return math.prod(out) * math.prod(w[2:] if len(w) == 5 else w[1:])
    if kind == "FullyConnected":  # weight (O, I)
        return math.prod(out) * w[-1]
    if kind == "MatMul":  # (…, M, K) × (…, K, N), either side maybe transposed
        a = ins[0]
        if transpose_a or a[-1] not in (w[-2], w[-1]):
            return math.prod(out) * a[-2]
        return math.prod(out) * a[-1]
    return 0


def _rt(info: Any, key: str) -> str:
    """One runtime-info field of an execution-graph node, as text ("" when absent)."""
    return info[key].astype(str) if key in info else ""


def _exec_kind(layer: str, precision: str, out_precision: str) -> OpKind:
    if layer == "FakeQuantize":
        return "quantize"
    if layer == "Convert" and precision in _INTEGER and out_precision in _FLOAT:
        return "dequantize"
    if layer == "Convert" and precision in _FLOAT and out_precision in _INTEGER:
        return "quantize"
    if layer in _OTHER:
        return "other"
    if precision in _INTEGER:
        return "int8"
    return "float" if precision in _FLOAT else "other"


def _ir_view(model: Any, path: Path) -> GraphView:
    """The IR as NNCF wrote it: an op computes in int8 when every data input comes through a
    FakeQuantize; weights (int8 constants and their decompression) are not ops."""
    constant: set[str] = set()
    on_grid: set[str] = set()  # outputs on the int8 grid: FakeQuantize, or moved data of one
    ops, int8, floating, fq = [], 0, 0, 0
    for node in model.get_ordered_ops():
        kind = node.get_type_name()
        producers = [i.get_source_output().get_node() for i in node.inputs()]
        if kind == "Constant" or (producers and all(p.get_name() in constant for p in producers)):
            constant.add(node.get_name())
            continue
        if kind in _NOT_OPS:
            continue
        data = [p for p in producers if p.get_name() not in constant]
        quantized = bool(data) and all(p.get_name() in on_grid for p in data)
        if kind == "FakeQuantize":
            op_kind: OpKind = "quantize"
            fq += 1
            on_grid.add(node.get_name())
        elif kind in _OTHER:
            op_kind = "other"
            if quantized:
                on_grid.add(node.get_name())
        elif quantized:
            op_kind = "int8"
        else:
            op_kind = "float"
        ops.append(GraphOp(kind, op_kind))
        ins = [_dims(i.get_partial_shape()) for i in node.inputs()]
        transpose_a = bool(node.get_attributes().get("transpose_a", False))
        macs = _macs(kind, ins, _dims(node.get_output_partial_shape(0)), transpose_a)
        int8 += macs if op_kind == "int8" else 0
        floating += macs if op_kind == "float" else 0
    view = GraphView(f"{path.name} (the IR)", ops, int8, floating, {"fake_quantize": fq})
    return view


class OpenVinoRuntime(Runtime):
    """One compiled model per input shape, each reshaped to that shape (static), as OpenVINO's
    ``benchmark_app -shape`` runs a model.

    Why not one compiled model with a dynamic batch: the CPU plugin gives every infer request of
    a compiled model one shared graph (per stream), and with dynamic shapes that graph keeps a
    pointer to the last zero-copy input a request bound. Once that request and its array are
    freed, a request of another batch size reads or frees that memory: OpenVINO 2026.4.1
    segfaults (or aborts on a corrupted heap) when one request runs batch 60, a second runs a
    bound batch of 32 and is freed, then the first runs batch 1: the order of evaluation, then
    the benchmark, then the end-to-end timing. Static shapes take that path away; the arrays a
    ``prepare`` binds are also kept alive until ``close``, so no request ever points at freed
    memory."""

    name = "openvino"
    pads_last_batch = True  # a shorter last batch of a split is padded: no compile for its shape

    def __init__(self, artifact, threads: int) -> None:
        super().__init__(artifact, threads)
        self.ov = require("openvino", "openvino", "the OpenVINO format")
        # f32: on CPUs with bf16 units the plugin would otherwise lower an fp32 model's precision
        self.config = {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
        }
        self.core = self.ov.Core()
        try:
            self.model = self.core.read_model(str(artifact.path))
        except Exception as e:
            raise ModelSourceError(
                f"{artifact.path}: OpenVINO cannot load it ({first_line(e)})"
            ) from None
        batch = self.model.inputs[0].get_partial_shape()[0]
        self.fixed_batch = batch.get_length() if batch.is_static else None
        self._by_shape: dict[tuple[tuple[int, ...], ...], tuple[Any, Any]] = {}
        self._bound: list[tuple[Any, list[np.ndarray]]] = []  # prepared requests, their arrays

    def _static(self, inputs: list[np.ndarray]) -> Any:
        """The model with every input reshaped to ``inputs``' shapes (itself when it has them)."""
        shapes = [list(a.shape) for a in inputs]
        if all(
            p.get_partial_shape().is_static and list(p.get_shape()) == s
            for p, s in zip(self.model.inputs, shapes, strict=True)
        ):
            return self.model
        model = self.model.clone()
        model.reshape({i: s for i, s in enumerate(shapes)})
        return model

    def _compiled(self, inputs: list[np.ndarray]) -> tuple[Any, Any]:
        """(compiled model, its request for ``run_all``) for ``inputs``' shapes, made once."""
        key = tuple(tuple(a.shape) for a in inputs)
        if key not in self._by_shape:
            try:
                compiled = self.core.compile_model(self._static(inputs), "CPU", self.config)
            except Exception as e:
                shapes = ", ".join(str(list(s)) for s in key)
                raise ModelSourceError(
                    f"{self.artifact.path}: OpenVINO cannot compile it for inputs {shapes} "
                    f"({first_line(e)})"
                ) from None
            self._by_shape[key] = (compiled, compiled.create_infer_request())
        return self._by_shape[key]

    def run_all(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        compiled, request = self._compiled(inputs)
        result = request.infer({i: np.ascontiguousarray(a) for i, a in enumerate(inputs)})
        return [np.asarray(result[o], dtype=np.float32).copy() for o in compiled.outputs]

    def output_names(self) -> list[str]:
        names = []
        for i, output in enumerate(self.model.outputs):
            try:
                names.append(output.get_any_name())
            except RuntimeError:  # an output without a tensor name
                names.append(f"output_{i}")
        return names

    def prepare(self, inputs: list[np.ndarray]) -> Callable[[], object]:
        """The inputs bound to a request once (shared memory, as a deployed loop binds its
        buffers): ``infer(dict)`` would wrap every array again on each call, about 0.15 ms."""
        compiled, _ = self._compiled(inputs)
        request = compiled.create_infer_request()
        arrays = [np.ascontiguousarray(a) for a in inputs]
        for i, a in enumerate(arrays):
            request.set_input_tensor(i, self.ov.Tensor(a, shared_memory=True))
        self._bound.append((request, arrays))  # alive as long as the compiled models
        return request.infer

    def read_outputs(self, result: object) -> list[np.ndarray]:
        return [np.asarray(o, dtype=np.float32) for o in result.to_tuple()]  # type: ignore[attr-defined]

    def close(self) -> None:
        self._bound.clear()  # requests first, then the compiled models they belong to
        self._by_shape.clear()

    def int8_graphs(self, inputs: list[np.ndarray]) -> dict[str, GraphView]:
        """The compiled model's execution graph (each node's layer type and the precision it
        runs in), timed by the plugin's performance counters, and the IR it was compiled from."""
        core = self.core
        compiled = core.compile_model(
            self._static(inputs), "CPU", self.config | {"PERF_COUNT": True}
        )
        request = compiled.create_infer_request()
        feed = {i: np.ascontiguousarray(a) for i, a in enumerate(inputs)}
        runs, spent = 20, {}  # node → its times, one per run after the warm-up
        for n in range(_WARMUP + runs):
            request.infer(feed)
            for info in request.profiling_info if n >= _WARMUP else []:
                if info.status == info.Status.EXECUTED:
                    ms = info.real_time.total_seconds() * 1000
                    spent.setdefault(info.node_name, []).append(ms)
        ir = self.model
        ir_types = {n.get_friendly_name(): n.get_type_name() for n in ir.get_ordered_ops()}
        ops, int8, floating = [], 0, 0
        for node in compiled.get_runtime_model().get_ordered_ops():
            info = node.get_rt_info()
            layer = _rt(info, "layerType") or node.get_type_name()
            if layer in _NOT_OPS:
                continue
            kind = _exec_kind(layer, _rt(info, "runtimePrecision"), _rt(info, "outputPrecisions"))
            names = _rt(info, "originalLayersNames")
            types = [ir_types[n] for n in names.split(",") if n in ir_types]
            if types and set(types) == {"FakeQuantize"}:  # a fused quantize (static shapes
                kind = "quantize"  # make the input's FakeQuantize a Subgraph run in f32)
            fused = dict.fromkeys(types)
            fused.pop("FakeQuantize", None)
            label = layer if list(fused) in ([], [layer]) else f"{layer} ({', '.join(fused)})"
            ms = float(np.median(spent.get(node.get_friendly_name(), [0.0])))  # stalls aside
            ops.append(GraphOp(label, kind, ms))
            ins = [_dims(i.get_partial_shape()) for i in node.inputs()]
            macs = _macs(layer, ins, _dims(node.get_output_partial_shape(0)))
            int8 += macs if kind == "int8" else 0
            floating += macs if kind == "float" else 0
        source = f"OpenVINO's compiled CPU graph and its performance counters, {runs} runs"
        runtime = GraphView(source, ops, int8, floating)
        return {"runtime": runtime, "model": _ir_view(ir, Path(self.artifact.path))}
