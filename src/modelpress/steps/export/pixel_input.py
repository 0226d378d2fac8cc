"""``io: uint8``: a model that takes a camera's uint8 NHWC frame, as phone pipelines feed it.

The permute to NCHW, the cast, the /255 and the recipe's ``normalize`` run inside the graph:
for ONNX as a prefix of ops on the finished file (FP32 or INT8 alike), for TFLite as a torch
wrapper converted with the model (calibrated on the same pixels). Outputs stay float. The
artifact records ``input_transform`` so every runtime is fed the pixels the data set's images
would be (``runtimes/adapt.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modelpress.core.context import StepContext
from modelpress.errors import StepError
from modelpress.runtimes.adapt import UINT8_NHWC


def pixel_transform(ctx: StepContext, where: str) -> dict[str, Any]:
    """The transform for this run's data; refused for inputs that are not images."""
    specs = ctx.input_specs
    if len(specs[0].shape) != 4 or specs[0].shape[1] not in (1, 3):
        shape = ",".join(map(str, specs[0].shape))
        raise StepError(
            f"{where}: io uint8 takes image input (N,C,H,W with 1 or 3 channels); this model's "
            f"input is {shape}; drop io"
        )
    norm = ctx.recipe.data.normalize
    return {
        "kind": UINT8_NHWC,
        "mean": list(norm.mean) if norm else None,
        "std": list(norm.std) if norm else None,
    }


class PixelModel(nn.Module):
    """``model`` behind a uint8 (B, H, W, C) input: permute, cast, /255, normalise."""

    def __init__(self, model: nn.Module, transform: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        mean, std = transform.get("mean"), transform.get("std")
        self.normalize = mean is not None
        self.register_buffer("mean", torch.tensor(mean or [0.0]).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std or [1.0]).reshape(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor, *rest: torch.Tensor) -> Any:
        x = pixels.permute(0, 3, 1, 2).to(torch.float32) * (1.0 / 255.0)  # (B, C, H, W)
        if self.normalize:
            x = (x - self.mean) / self.std
        return self.model(x, *rest)


def prefix_onnx(path: Path, transform: dict[str, Any]) -> None:
    """Give the ONNX file at ``path`` a uint8 NHWC first input, converted in the graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    old = graph.input[0]
    name, inner = old.name, f"{old.name}__nchw"
    for node in graph.node:
        for i, value in enumerate(node.input):
            if value == name:
                node.input[i] = inner
    dims = old.type.tensor_type.shape.dim
    batch = dims[0].dim_param or dims[0].dim_value
    c, h, w = (d.dim_value for d in dims[1:4])
    new = helper.make_tensor_value_info(name, TensorProto.UINT8, [batch, h, w, c])
    consts = {f"{name}__scale": np.array(1.0 / 255.0, np.float32)}
    nodes = [
        helper.make_node("Transpose", [name], [f"{name}__t"], perm=[0, 3, 1, 2]),
        helper.make_node("Cast", [f"{name}__t"], [f"{name}__f"], to=TensorProto.FLOAT),
    ]
    scaled = inner if transform.get("mean") is None else f"{name}__scaled"
    nodes.append(helper.make_node("Mul", [f"{name}__f", f"{name}__scale"], [scaled]))
    if transform.get("mean") is not None:
        shape = (1, -1, 1, 1)
        consts[f"{name}__mean"] = np.asarray(transform["mean"], np.float32).reshape(shape)
        consts[f"{name}__std"] = np.asarray(transform["std"], np.float32).reshape(shape)
        nodes += [
            helper.make_node("Sub", [scaled, f"{name}__mean"], [f"{name}__centred"]),
            helper.make_node("Div", [f"{name}__centred", f"{name}__std"], [inner]),
        ]
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    graph.input.remove(old)
    graph.input.insert(0, new)
    for node in reversed(nodes):
        graph.node.insert(0, node)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        raise StepError(f"io uint8: the prefixed ONNX graph is invalid: {e}") from None
    onnx.save(model, str(path))
