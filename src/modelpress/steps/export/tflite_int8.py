"""Full-integer TFLite: litert-torch's PT2E quantizer completed for MobileNet-style graphs, and a
look at the converted graph (which ops run in int8, which in float, how many (de)quantizes).

Why litert-torch's own ``PT2EQuantizer`` made a MobileNetV3 slower in int8 than in fp32
(litert-torch 0.10, torch 2.13, ai-edge-litert 2.3):

- Its add, cat and functional max-pool annotators find their ops through
  ``get_source_partitions``, which wants the node's ``source_fn_stack``; ``torch.export`` no
  longer records it (only ``torch_fn``, a name, which those patterns do not list), so a residual
  add is not annotated. Where such an op sits between a dequantize and a quantize, the converter
  still runs it in int8; an add whose input is another add gets a float input and stays float.
- hardsigmoid has no annotator, and litert-torch lowers it after quantization to ADD → MUL with
  no scale for the tensor in between: a float island (DEQUANTIZE, ADD, MUL, QUANTIZE) in every
  squeeze-excite block.
- hardswish has no annotator either; the converter makes it an int8 HARD_SWISH, but XNNPACK's
  TFLite delegate takes HARD_SWISH in float only (``VisitHardSwishNode`` checks the tensor
  type), so each one splits the delegated graph and runs in TFLite's own kernel: 20 XNNPACK
  partitions instead of 1 for MobileNetV3-Small.

``MobileQuantizer`` keeps litert-torch's annotations (conv, linear, …) and adds, matched on the
aten op itself:

    add, mul           inputs and output observed; an add/mul feeding only a relu / relu6 leaves
                       its output to the activation (the converter fuses them into one int8 op)
    hardsigmoid        rewritten before annotation as relu6(x + 3) · 1/6 (int8 ADD with relu6
                       fused, int8 MUL), its output fixed to [0, 1] (scale 1/255, zero point
                       -128: 0 and 1 exact)
    hardswish          rewritten as x · hardsigmoid(x): int8 ADD, MUL, MUL, all in XNNPACK
                       (kept whole it becomes an int8 HARD_SWISH that XNNPACK leaves out)
    mean, pooling      input observed, output shares the input's scale (TFLite MEAN, int8)
    relu / relu6       output shares the input's scale

An input that comes from an annotated op shares that op's output scale, so no requantize is
inserted between them.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer
from litert_torch.quantize.pt2e_quantizer_utils import QuantizationConfig
from torch.fx import GraphModule, Node
from torchao.quantization.pt2e.quantizer import (
    FixedQParamsQuantizationSpec,
    QuantizationAnnotation,
    QuantizationSpecBase,
    SharedQuantizationSpec,
)
from torchao.quantization.pt2e.utils import get_new_attr_name_with_prefix

aten = torch.ops.aten
_ADD = {aten.add.Tensor, aten.add_.Tensor}
_MUL = {aten.mul.Tensor, aten.mul_.Tensor}
_HARDSWISH = {aten.hardswish.default, aten.hardswish_.default}
_HARDSIGMOID = {aten.hardsigmoid.default, aten.hardsigmoid_.default}
# One input tensor, same scale out (the value range does not grow).
_POOL = {aten.adaptive_avg_pool2d.default, aten.avg_pool2d.default, aten.max_pool2d.default}
_RELU = {aten.relu.default, aten.relu_.default}
_RELU6 = {aten.hardtanh.default, aten.hardtanh_.default}
_KEY = "quantization_annotation"
_GATE = "modelpress_hardsigmoid"  # meta flag on the mul that ends a rewritten hardsigmoid

# hardsigmoid's output is in [0, 1]: 256 steps with both ends exact.
UNIT_RANGE = FixedQParamsQuantizationSpec(
    dtype=torch.int8,
    scale=1 / 255,
    zero_point=-128,
    quant_min=-128,
    quant_max=127,
    qscheme=torch.per_tensor_affine,
)


def _annotated(node: Node) -> bool:
    return _KEY in node.meta and node.meta[_KEY]._annotated


def _observed_output(node: Node) -> bool:
    return _annotated(node) and node.meta[_KEY].output_qspec is not None


def _input_spec(arg: Node, config: QuantizationConfig) -> QuantizationSpecBase | None:
    """The producer's own scale where it has one (no requantize between them), else observed."""
    return SharedQuantizationSpec(arg) if _observed_output(arg) else config.input_activation


def _annotate(
    node: Node,
    inputs: dict[Node, QuantizationSpecBase | None],
    output: QuantizationSpecBase | None,
) -> None:
    node.meta[_KEY] = QuantizationAnnotation(
        input_qspec_map=inputs, output_qspec=output, _annotated=True
    )


def _is_float(node: Node) -> bool:
    """A floating-point tensor (a constant made by ``_convert_scalars_to_attrs`` has no "val":
    its attribute is read instead)."""
    val = node.meta.get("val")
    if val is None and node.op == "get_attr":
        val = getattr(node.graph.owning_module, node.target, None)
    return isinstance(val, torch.Tensor) and val.is_floating_point()


def _is_relu(node: Node) -> bool:
    """relu, or relu6 (hardtanh to [0, 6]): the activations TFLite fuses into add / mul."""
    if node.op != "call_function":
        return False
    return node.target in _RELU or (node.target in _RELU6 and tuple(node.args[1:3]) == (0.0, 6.0))


def _is_spatial_mean(node: Node) -> bool:
    """mean over H and W of an N, C, H, W tensor: global average pooling (TFLite MEAN)."""
    if node.target != aten.mean.dim or not isinstance(node.args[0], Node):
        return False
    val = node.args[0].meta.get("val")
    dims = node.args[1] if len(node.args) > 1 else None
    if not isinstance(val, torch.Tensor) or val.dim() != 4 or not dims:
        return False
    return {d % 4 for d in dims} <= {2, 3}


def _constant(gm: GraphModule, like: Node, value: float) -> Node:
    """A constant of ``like``'s rank (all sizes 1): litert-torch keeps an elementwise op in
    NHWC only when every input is 4-D, and a 0-D constant would cost a reshape either side."""
    name = get_new_attr_name_with_prefix("_modelpress_constant_")(gm)
    gm.register_buffer(name, torch.full((1,) * like.meta["val"].dim(), value))
    node = gm.graph.get_attr(name)
    node.meta["val"] = getattr(gm, name)
    return node


def _hard_gate(gm: GraphModule, node: Node) -> Node:
    """relu6(x + 3) · 1/6 of ``node``'s input, inserted before ``node``: the hard sigmoid."""
    x = node.args[0]
    with gm.graph.inserting_before(node):
        shifted = gm.graph.call_function(aten.add.Tensor, (x, _constant(gm, node, 3.0)))
        clamped = gm.graph.call_function(aten.hardtanh.default, (shifted, 0.0, 6.0))
        gate = gm.graph.call_function(aten.mul.Tensor, (clamped, _constant(gm, node, 1 / 6)))
    for new in (shifted, clamped, gate):
        new.meta.update(node.meta)  # same shape and dtype; the module stack for module filters
    gate.meta[_GATE] = True
    return gate


def decompose_hard_activations(gm: GraphModule) -> int:
    """Rewrite hardsigmoid(x) as relu6(x + 3) · 1/6 and hardswish(x) as x · hardsigmoid(x):
    ADD (relu6 fused) and MUL, which TFLite and XNNPACK's delegate run in int8. litert-torch
    lowers hardsigmoid to these ops anyway, but after quantization, leaving the tensor in
    between without a scale. Returns how many nodes were rewritten."""
    count = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in _HARDSIGMOID | _HARDSWISH:
            continue
        out = _hard_gate(gm, node)
        if node.target in _HARDSWISH:
            with gm.graph.inserting_before(node):
                out = gm.graph.call_function(aten.mul.Tensor, (node.args[0], out))
            out.meta.update(node.meta)
        node.replace_all_uses_with(out)
        gm.graph.erase_node(node)
        count += 1
    if count:
        gm.graph.lint()
        gm.recompile()
    return count


def annotate_mobile_ops(
    gm: GraphModule, config: QuantizationConfig, filter_fn: Callable[[Node], bool] | None
) -> None:
    """Annotate what litert-torch's own annotators left: one pass in topological order, so a
    producer is annotated before its consumers look at it."""

    def takes(node: Node) -> bool:
        return not _annotated(node) and (filter_fn is None or filter_fn(node))

    for node in gm.graph.nodes:
        if node.op != "call_function" or not _is_float(node) or not takes(node):
            continue
        args = [a for a in node.args[:2] if isinstance(a, Node) and _is_float(a)]
        if node.target in _ADD or node.target in _MUL:
            inputs = {a: _input_spec(a, config) for a in args}
            users = list(node.users)
            if len(users) == 1 and _is_relu(users[0]) and takes(users[0]):
                _annotate(node, inputs, None)  # fused: the activation's output is the scale
                _annotate(users[0], {}, config.output_activation)
            else:
                output = UNIT_RANGE if node.meta.get(_GATE) else config.output_activation
                _annotate(node, inputs, output)
        elif args and (node.target in _POOL or _is_spatial_mean(node) or _is_relu(node)):
            source = args[0]
            _annotate(
                node,
                {source: _input_spec(source, config)},
                SharedQuantizationSpec((source, node)),
            )


def stem_conv(gm: GraphModule) -> Node | None:
    """The convolution that reads a graph input directly (an image model's stem), if any."""
    return next(
        (
            n
            for n in gm.graph.nodes
            if n.op == "call_function"
            and n.target == aten.conv2d.default
            and isinstance(n.args[0], Node)
            and n.args[0].op == "placeholder"
        ),
        None,
    )


def leave_stem_float(gm: GraphModule) -> str | None:
    """Drop the stem convolution's annotation, and that of the ops annotated as its pattern
    (those reading its output): it runs in float and the first QUANTIZE follows it. XNNPACK's
    int8 convolution over 3 input channels is the slow one (MobileNetV3-Small at 224×224:
    0.95× → 1.15× the FP32 model with a float stem). Returns the stem's name."""
    stem = stem_conv(gm)
    if stem is None:
        return None
    stem.meta.pop(_KEY, None)
    for user in stem.users:
        annotation = user.meta.get(_KEY)
        if annotation is not None and stem in annotation.input_qspec_map:
            user.meta.pop(_KEY)
    return stem.name


class MobileQuantizer(PT2EQuantizer):
    """litert-torch's PT2E quantizer plus the ops of MobileNet-style models (see module doc);
    with ``float_stem`` the stem convolution stays in float."""

    def __init__(self, float_stem: bool = False) -> None:
        super().__init__()
        self.float_stem = float_stem

    def transform_for_annotation(self, model: GraphModule) -> GraphModule:
        decompose_hard_activations(model)
        return super().transform_for_annotation(model)  # scalars → tensor attributes

    def _annotate_all_static_patterns(
        self,
        model: GraphModule,
        quantization_config: QuantizationConfig | None,
        filter_fn: Callable[[Node], bool] | None = None,
    ) -> GraphModule:
        super()._annotate_all_static_patterns(model, quantization_config, filter_fn)
        if quantization_config is not None and quantization_config.input_activation is not None:
            if self.float_stem:  # before ours: consumers must not share its (absent) scale
                leave_stem_float(model)
            annotate_mobile_ops(model, quantization_config, filter_fn)
        return model

    def annotate(self, model: GraphModule) -> GraphModule:
        from modelpress.steps.float_tail import drop_non_float

        model = super().annotate(model)
        drop_non_float(model)  # integer tensors (arange grids) take no observer
        return model


# ---- the prepared PT2E graph and the converted .tflite: what runs in float, and why

_NOT_COMPUTE = {"getitem", "dropout", "alias", "detach", "clone"}  # no kernel in the .tflite


def unannotated_ops(prepared: GraphModule, skip: set[str] | None = None) -> dict[str, int]:
    """aten ops of a prepared graph that no annotator took: they stay float in the PT2E graph,
    and the converter runs them in int8 only where they sit between a dequantize and a quantize.
    Nodes named in ``skip`` (a stem left float on purpose) are not counted."""
    counts: collections.Counter[str] = collections.Counter()
    for node in prepared.graph.nodes:
        if node.op != "call_function" or _annotated(node) or node.name in (skip or ()):
            continue
        name = getattr(node.target, "__name__", str(node.target))
        if name.split(".")[0] in _NOT_COMPUTE or "quantize" in str(node.target):
            continue
        counts[str(node.target)] += 1
    return dict(sorted(counts.items()))


def tflite_ops(path: Path) -> list[dict[str, Any]]:
    """The model's own ops in order (no delegate applied), each with its inputs' and outputs'
    dtypes and whether they are graph inputs/outputs."""
    from modelpress.runtimes.litert import model_ops

    table = model_ops(path, delegate=False)
    dtype = {i: np.dtype(d["dtype"]).name for i, d in table.tensors.items()}
    return [
        {
            "op": op["op_name"],
            "inputs": [dtype[i] for i in op["inputs"] if i in dtype],
            "outputs": [dtype[i] for i in op["outputs"] if i in dtype],
            "at_input": any(i in table.inputs for i in op["inputs"]),
            "at_output": any(i in table.outputs for i in op["outputs"]),
        }
        for op in table.ops
    ]


def xnnpack_partitions(path: Path) -> int:
    """How many pieces XNNPACK's delegate takes the graph in (see
    ``runtimes.litert.delegate_partitions``)."""
    from modelpress.runtimes.litert import delegate_partitions

    return delegate_partitions(path)


_FLOAT = ("float32", "float16")


def int8_graph(ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts over ``tflite_ops``: ops in int8, ops in float (by type), QUANTIZE (float → int),
    DEQUANTIZE, requantize (QUANTIZE int → int, a scale change that stays integer), and how many
    of the float ↔ int conversions sit anywhere but at the graph's inputs / outputs."""
    float_ops: collections.Counter[str] = collections.Counter()
    quantize = dequantize = requantize = inner = 0
    for op in ops:
        if op["op"] == "QUANTIZE" and any(d in _FLOAT for d in op["inputs"]):
            quantize += 1
            inner += not op["at_input"]
        elif op["op"] == "QUANTIZE":
            requantize += 1
        elif op["op"] == "DEQUANTIZE":
            dequantize += 1
            inner += not op["at_output"]
        elif any(d in _FLOAT for d in op["outputs"]):
            float_ops[op["op"]] += 1
    conversions = quantize + dequantize + requantize
    return {
        "ops": len(ops),
        "int8_ops": len(ops) - sum(float_ops.values()) - conversions,
        "float_ops": dict(sorted(float_ops.items())),
        "quantize": quantize,
        "dequantize": dequantize,
        "requantize": requantize,
        "conversions_inside": inner,
    }


STEM_OPS = {"CONV_2D", "PAD", "PADV2", "TRANSPOSE"}  # a float stem and the input's layout


def explain_float_ops(
    graph: dict[str, Any], unannotated: dict[str, int], float_stem: bool = False
) -> list[dict[str, Any]]:
    """One entry per float op type of the .tflite with the reason it was not quantized."""
    stem_why = (
        "the stem convolution (with the float input's transpose and padding before it), "
        "left in float: built both ways and timed, the float stem was faster"
    )
    if float_stem and not unannotated:
        other = "every aten op was annotated; the converter itself kept this op in float"
        return [
            {"op": op, "count": n, "why": stem_why if op in STEM_OPS else other}
            for op, n in graph["float_ops"].items()
        ]
    if unannotated:
        listed = ", ".join(f"{op} ×{n}" for op, n in unannotated.items())
        why = (
            f"no int8 annotation for {listed} (neither litert-torch's PT2EQuantizer nor "
            "modelpress's MobileQuantizer has one); the converter keeps such ops in float "
            "between DEQUANTIZE and QUANTIZE"
        )
    else:
        why = "every aten op was annotated; the converter itself kept this op in float"
    return [{"op": op, "count": n, "why": why} for op, n in graph["float_ops"].items()]


def compact_tflite_names(path: Path) -> int:
    """Give every internal tensor a short name (``t12``), keeping the names of the graph's
    inputs and outputs: litert-torch names each tensor after its whole module path and op
    (about 300 bytes each, 16 % of a small INT8 file). Rewrites ``path`` in place unless the
    model keeps buffers outside the flatbuffer; returns the bytes saved."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    data = path.read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    if any(getattr(b, "offset", 0) for b in model.buffers or []):
        return 0  # buffers stored after the flatbuffer: repacking would drop them
    for graph in model.subgraphs or []:
        keep = {int(i) for ends in (graph.inputs, graph.outputs) if ends is not None for i in ends}
        for i, tensor in enumerate(graph.tensors or []):
            if i not in keep:
                tensor.name = f"t{i}".encode()
    builder = flatbuffers.Builder(len(data))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    packed = bytes(builder.Output())
    if len(packed) >= len(data):
        return 0
    tmp = path.with_suffix(".compact.tflite")
    tmp.write_bytes(packed)
    tmp.replace(path)
    return len(data) - len(packed)
