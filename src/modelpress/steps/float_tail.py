"""The decode tail a task keeps in float when quantizing (``Task.float_tail``), found in a graph.

The tail is every op with no weighted op (convolution, matrix product) after it: for a
detector, what turns the head's last convolutions into outputs (softplus or DFL, anchor
arithmetic, sigmoid, concat) and the constant branches feeding only that. Quantizing it
puts boxes in pixels and scores in [0, 1] under one INT8 scale once they share a tensor, which
rounds every score to zero (the mAP-0 INT8 exports). Found from the graph, so it holds for any
detector, not only ours. Shared by the ONNX, PT2E and TFLite quantizers; imports no technique.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

ONNX_WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
FX_WEIGHTED = ("conv1d", "conv2d", "conv3d", "conv_transpose", "linear", "matmul", "mm", "bmm")


def tail_of(
    nodes: list[Any],
    inputs_of: Any,
    is_weighted: Any,
    key: Any = id,
) -> list[Any]:
    """Nodes (in the given topological order) with no weighted node downstream, that are
    not weighted themselves: the ops after the last convolutions, and the constant branches
    feeding only them (anchor grids, strides). ``inputs_of(node)`` yields the nodes it reads;
    ``key(node)`` identifies a node (``id``, or a name where wrappers are made per call)."""
    consumers: dict[Any, list[Any]] = {key(n): [] for n in nodes}
    for n in nodes:
        for src in inputs_of(n):
            if key(src) in consumers:
                consumers[key(src)].append(n)
    feeds_weighted: dict[Any, bool] = {}
    for n in reversed(nodes):  # consumers come later in topological order
        feeds_weighted[key(n)] = any(
            is_weighted(c) or feeds_weighted[key(c)] for c in consumers[key(n)]
        )
    if not any(is_weighted(n) for n in nodes):
        return []
    return [n for n in nodes if not is_weighted(n) and not feeds_weighted[key(n)]]


def onnx_tail(model: Any) -> list[Any]:
    """The tail's nodes of an ONNX ``ModelProto`` (its graph is topologically sorted)."""
    nodes = list(model.graph.node)
    producer = {out: n for n in nodes for out in n.output}

    def inputs_of(n: Any) -> Iterable[Any]:
        return [producer[i] for i in n.input if i in producer]

    return tail_of(nodes, inputs_of, lambda n: n.op_type in ONNX_WEIGHTED)


OV_WEIGHTED = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul")
OV_SKIP = ("Parameter", "Constant", "Result")


def openvino_tail(model: Any) -> list[Any]:
    """The tail's ops of an ``openvino.Model`` (constants, parameters and results aside)."""
    ops = [op for op in model.get_ordered_ops() if op.get_type_name() not in OV_SKIP]

    def inputs_of(op: Any) -> list[Any]:
        return [i.get_source_output().get_node() for i in op.inputs()]

    def weighted(op: Any) -> bool:
        return op.get_type_name() in OV_WEIGHTED

    tail = tail_of(ops, inputs_of, weighted, key=lambda op: op.get_friendly_name())
    # a convolution's bias is an Add of its own in OpenVINO: it belongs to the convolution
    return [
        op
        for op in tail
        if not (op.get_type_name() == "Add" and any(weighted(s) for s in inputs_of(op)))
    ]


def fx_tail(graph: Any) -> list[Any]:
    """The tail's ``call_function`` nodes of a torch.fx graph (an exported program's)."""
    nodes = [n for n in graph.nodes if n.op == "call_function"]

    def is_weighted(n: Any) -> bool:
        name = getattr(n.target, "__name__", str(n.target))
        return name.split(".")[0] in FX_WEIGHTED

    return tail_of(nodes, lambda n: [a for a in n.all_input_nodes], is_weighted)


def describe(ops: list[str], why: str) -> dict[str, Any]:
    """What the record says of a float tail: the op types kept float, and why."""
    counts: dict[str, int] = {}
    for op in ops:
        counts[op] = counts.get(op, 0) + 1
    return {"ops": counts, "nodes": len(ops), "why": why}


def strip_tail(model: Any) -> list[str]:
    """Remove the PT2E annotations of a graph's tail (after a quantizer annotated it), so
    ``prepare_pt2e`` leaves those ops in float; the op names that were kept float."""
    kept = []
    for node in fx_tail(model.graph):
        node.meta.pop("quantization_annotation", None)
        kept.append(getattr(node.target, "__name__", str(node.target)).split(".")[0])
    return kept


def with_float_tail(quantizer: Any, kept: list[str]) -> Any:
    """``quantizer`` (any PT2E quantizer) that leaves the graph's tail unannotated; the kept
    op names are appended to ``kept`` when it annotates."""
    from torchao.quantization.pt2e.quantizer import Quantizer

    class FloatTail(Quantizer):
        def transform_for_annotation(self, model: Any) -> Any:
            return quantizer.transform_for_annotation(model)

        def annotate(self, model: Any) -> Any:
            model = quantizer.annotate(model) or model
            kept.extend(strip_tail(model))
            drop_non_float(model)
            return model

        def validate(self, model: Any) -> None:
            quantizer.validate(model)

    return FloatTail()


def _is_float(node: Any, model: Any) -> bool:
    val = node.meta.get("val") if hasattr(node, "meta") else None
    if val is None and getattr(node, "op", None) == "get_attr":  # a scalar made a constant
        val = getattr(model, str(node.target), None)
    dtype = getattr(val, "dtype", None)
    return dtype is None or bool(getattr(dtype, "is_floating_point", True))


def drop_non_float(model: Any) -> int:
    """Remove PT2E annotations on integer tensors (anchor grids made by ``arange``: an
    observer on an int64 tensor fails, and integers need no quantizing); how many were
    dropped."""
    dropped = 0
    for node in model.graph.nodes:
        ann = node.meta.get("quantization_annotation")
        if ann is None:
            continue
        for src in [s for s in ann.input_qspec_map if not _is_float(s, model)]:
            del ann.input_qspec_map[src]
            dropped += 1
        if ann.output_qspec is not None and not _is_float(node, model):
            ann.output_qspec = None
            dropped += 1
    return dropped
