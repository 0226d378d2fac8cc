"""LiteRT interpreter (format ``tflite``) with its default XNNPACK delegate.

Integer-I/O models (full int8) take float data like any other artifact: inputs are quantized and
outputs dequantized here with each tensor's own scale and zero point. The interpreter is resized
to each batch size where the graph allows; where it does not (a reshape fixed at batch 1), the
artifact is fixed-batch and evaluation feeds it one sample at a time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from modelpress.chatter import native_banners
from modelpress.core.inputs import InputSpec
from modelpress.errors import ModelSourceError, first_line
from modelpress.extras import require
from modelpress.runtimes.base import GraphOp, GraphView, OpKind, Runtime


def _interpreter(path: Path, threads: int, delegate: bool = True) -> Any:
    """A LiteRT interpreter; without ``delegate`` the model's own ops (no XNNPACK)."""
    lite = require("ai_edge_litert.interpreter", "tflite", "the tflite format")
    kind = lite.OpResolverType
    resolver = kind.AUTO if delegate else kind.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        return lite.Interpreter(
            model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver
        )
    except Exception as e:
        raise ModelSourceError(
            f"{path}: the LiteRT interpreter cannot load it ({first_line(e)})"
        ) from None


# Data movement and shape bookkeeping: no multiply or add on the values.
_OTHER = {
    "RESHAPE", "TRANSPOSE", "SQUEEZE", "EXPAND_DIMS", "PAD", "PADV2", "MIRROR_PAD",
    "CONCATENATION", "SLICE", "STRIDED_SLICE", "GATHER", "GATHER_ND", "PACK", "UNPACK", "SPLIT",
    "SPLIT_V", "SHAPE", "CAST", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "BROADCAST_TO", "TILE",
}  # fmt: skip
_INTEGER = {"int8", "uint8", "int16"}
_FLOAT = {"float32", "float16"}
_WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL"}


def _op_kind(op: str, dtype: str, weight: str | None) -> OpKind:
    """By the element type of an op's first input (and of a conv's or matmul's weight: an int8
    weight under float activations is a hybrid kernel, quantizing them on the fly)."""
    if op == "QUANTIZE":
        return "quantize"
    if op == "DEQUANTIZE":
        return "dequantize"
    if op in _OTHER:
        return "other"
    if dtype in _INTEGER or (op in _WEIGHTED and weight == "int8"):
        return "int8"
    return "float" if dtype in _FLOAT else "other"


def _macs(op: str, shapes: list[list[int]], out: list[int]) -> int:
    """Multiply-accumulates of a conv / matmul op from its tensors' shapes (NHWC, OHWI)."""
    if len(shapes) < 2 or not shapes[1]:
        return 0
    w = shapes[1]
    if op == "CONV_2D":  # weight (O, kH, kW, I / groups)
        return math.prod(out) * math.prod(w[1:])
    if op == "DEPTHWISE_CONV_2D":  # weight (1, kH, kW, C·multiplier): kH·kW per output
        return math.prod(out) * math.prod(w[1:3])
    if op == "FULLY_CONNECTED":  # weight (O, I)
        return math.prod(out) * w[-1]
    if op == "BATCH_MATMUL":  # (…, M, K) × (…, K, N), either side maybe adjoint
        a = shapes[0]
        return math.prod(out) * (a[-1] if a[-1] in (w[-2], w[-1]) else a[-2])
    if op == "TRANSPOSE_CONV" and len(shapes) > 2:  # (output shape, weight O·kH·kW·I, input)
        return math.prod(shapes[2]) * math.prod(w[:3])
    return 0


def _delegation(ops: list[dict[str, Any]]) -> tuple[set[int], int]:
    """(indices of the ops a delegate took, number of delegate partitions). A delegate node
    stands for the ops between its input and its output tensors."""
    producer = {t: op["index"] for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    by_index = {op["index"]: op for op in ops}
    partitions = [op for op in ops if op["op_name"] == "DELEGATE"]
    inside: set[int] = set()
    for part in partitions:
        stop, todo, seen = set(part["inputs"]), list(part["outputs"]), set()
        while todo:
            t = todo.pop()
            if t in stop or t in seen or t not in producer:
                continue
            seen.add(t)
            inside.add(producer[t])
            todo += [i for i in by_index[producer[t]]["inputs"] if i >= 0]
    return inside, len(partitions)


class OpTable(NamedTuple):
    ops: list[dict[str, Any]]  # the interpreter's op list, in order
    tensors: dict[int, dict[str, Any]]  # tensor details by index
    inputs: set[int]  # tensor indices of the graph's inputs
    outputs: set[int]  # and of its outputs


def model_ops(path: Path, delegate: bool = True, threads: int = 1) -> OpTable:
    """The interpreter's op list (``_get_ops_details``: the public API lists tensors only), its
    tensors and the graph's inputs and outputs, read once for every look at a .tflite graph.
    With ``delegate`` the default delegate (XNNPACK) is applied, and the ops it took are DELEGATE
    nodes; without, the model's own ops."""
    with native_banners():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
        it = _interpreter(path, threads, delegate)
        it.allocate_tensors()
    return OpTable(
        it._get_ops_details(),
        {d["index"]: d for d in it.get_tensor_details()},
        {d["index"] for d in it.get_input_details()},
        {d["index"] for d in it.get_output_details()},
    )


def delegate_partitions(path: Path) -> int:
    """How many pieces the default delegate (XNNPACK) takes the graph in (1: all of it in one;
    each op it refuses splits it and runs in TFLite's own kernel in between)."""
    return _delegation(model_ops(path, delegate=True).ops)[1]


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """float → the tensor's integer type with its (scale, zero point); plain cast otherwise."""
    dtype = np.dtype(detail["dtype"])
    if _quantized(detail) and np.issubdtype(x.dtype, np.floating):
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def _quantized(detail: dict) -> bool:
    """An integer tensor with a scale: a quantized value (raw uint8 pixels have none)."""
    dtype = np.dtype(detail["dtype"])
    return dtype in (np.int8, np.uint8, np.int16) and float(detail["quantization"][0]) != 0.0


def dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]) in (np.int8, np.uint8, np.int16):
        scale, zero = detail["quantization"]
        return (y.astype(np.float32) - zero) * scale
    return y.astype(np.float32)


def describe_io(path: Path) -> dict[str, list[str]]:
    it = _interpreter(path, 1)
    return {
        "inputs": [np.dtype(d["dtype"]).name for d in it.get_input_details()],
        "outputs": [np.dtype(d["dtype"]).name for d in it.get_output_details()],
    }


class LiteRTRuntime(Runtime):
    name = "litert"

    def __init__(self, artifact, threads: int) -> None:
        super().__init__(artifact, threads)
        with native_banners():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
            self.it = _interpreter(artifact.path, threads)
            self.it.allocate_tensors()
            self.inputs = self.it.get_input_details()
            self.outputs = self.it.get_output_details()
            self.batch = int(self.inputs[0]["shape"][0])
            if not self._resize(self.batch + 1):  # can the graph take another batch size?
                self.fixed_batch = self.batch

    def _resize(self, batch: int) -> bool:
        """Resize every input to ``batch``; on failure put the previous shapes back."""
        if batch == self.batch:
            return True
        previous = [(d["index"], list(d["shape"])) for d in self.inputs]
        try:
            for index, shape in previous:
                self.it.resize_tensor_input(index, [batch, *shape[1:]])
            self.it.allocate_tensors()
        except Exception:
            for index, shape in previous:
                self.it.resize_tensor_input(index, shape)
            self.it.allocate_tensors()
            return False
        self.batch = batch
        self.inputs = self.it.get_input_details()
        self.outputs = self.it.get_output_details()
        return True

    def _set(self, inputs: list[np.ndarray]) -> None:
        if len(inputs[0]) != self.batch and not self._resize(len(inputs[0])):
            raise ModelSourceError(f"{self.artifact.path}: takes batch {self.batch} only")
        for d, a in zip(self.inputs, inputs, strict=True):
            self.it.set_tensor(d["index"], np.ascontiguousarray(quantize(a, d)))

    def run_all(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        self._set(inputs)
        self.it.invoke()
        return [dequantize(self.it.get_tensor(o["index"]), o) for o in self.outputs]

    def output_names(self) -> list[str]:
        return [str(o["name"]) for o in self.outputs]

    def prepare(self, inputs: list[np.ndarray]) -> Callable[[], object]:
        self._set(inputs)  # quantized and copied in once; each call is the interpreter's work
        return self.it.invoke

    def read_outputs(self, result: object) -> list[np.ndarray]:
        """The outputs the interpreter holds after its last ``invoke`` (which returns None)."""
        return [dequantize(self.it.get_tensor(o["index"]), o) for o in self.outputs]

    def precision(self) -> str:
        details = self.it.get_tensor_details()
        dtypes = {np.dtype(d["dtype"]).name for d in details}
        if _quantized(self.inputs[0]):  # int8 I/O (not a camera frame's raw uint8 pixels)
            return "int8"
        if "int8" in dtypes:  # int8 activations (a float stem, then int8): full int8
            produced = {i for op in self.it._get_ops_details() for i in op["outputs"]}
            int8_out = any(
                d["index"] in produced and np.dtype(d["dtype"]).name == "int8" for d in details
            )
            return "int8" if int8_out else "int8-dynamic"
        if "float16" in dtypes:
            return "fp16"
        return "fp32"

    def input_specs(self) -> list[InputSpec]:
        specs = []
        for d in self.inputs:
            dtype = np.dtype(d["dtype"]).name
            dtype = (
                "float32"
                if _quantized(d)  # fed floats, quantized here
                else ("int64" if dtype == "int32" else dtype)
            )
            specs.append(
                InputSpec(d["name"].replace(":", "_"), tuple(int(v) for v in d["shape"]), dtype)
            )
        return specs

    def int8_graphs(self, inputs: list[np.ndarray]) -> dict[str, GraphView]:
        """Each op with its tensors' types, as a fresh interpreter at the converted batch size
        holds them, and which ops the default delegate (XNNPACK) took. LiteRT's Python
        interpreter has no per-op profiler: no time shares."""
        table = model_ops(self.artifact.path, delegate=True, threads=self.threads)
        details, tensors = table.ops, table.tensors

        def dtype(i: int) -> str:
            return np.dtype(tensors[i]["dtype"]).name if i in tensors else "?"

        def shape(i: int) -> list[int]:
            return [int(v) for v in tensors[i]["shape"]] if i in tensors else []

        model = [op for op in details if op["op_name"] != "DELEGATE"]
        delegated, partitions = _delegation(details)
        ops, int8, floating = [], 0, 0
        for op in model:
            ins = [i for i in op["inputs"] if i >= 0]
            name = op["op_name"]
            weight = dtype(ins[1]) if name in _WEIGHTED and len(ins) > 1 else None
            kind = _op_kind(name, dtype(ins[0]) if ins else "?", weight)
            ops.append(GraphOp(name, kind))
            macs = _macs(name, [shape(i) for i in ins], shape(op["outputs"][0]))
            int8 += macs if kind == "int8" else 0
            floating += macs if kind == "float" else 0
        facts: dict[str, Any] = {}
        if partitions:
            left = Counter(op["op_name"] for op in model if op["index"] not in delegated)
            facts["delegate"] = {
                "name": "XNNPACK",
                "partitions": partitions,
                "ops_delegated": len(delegated),
                "not_delegated": dict(left.most_common()),
            }
        source = "the LiteRT interpreter's ops and tensor types, with its default delegate"
        return {"runtime": GraphView(source, ops, int8, floating, facts)}
