"""Size, parameters and MACs of an artifact: numbers read from its files or its module, no run."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelpress.core.artifact import Artifact


def files_size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def onnx_external_files(path: Path) -> list[Path]:
    """The external data files an ONNX file's tensors live in (a model past protobuf's 2 GB
    keeps its weights beside the graph): part of its size, and of what a device loads."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not readable here: its runtime will say so when it is run
        return []
    graphs, locations = [model.graph], set()
    while graphs:
        graph = graphs.pop()
        for tensor in graph.initializer:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                locations |= {e.value for e in tensor.external_data if e.key == "location"}
        for node in graph.node:
            graphs.extend(a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH)
    return [path.parent / loc for loc in sorted(locations)]


def state_dict_bytes(module: Any) -> int:
    """Bytes of ``torch.save`` of the module's weights, serialised as a modelpress checkpoint
    holds them (``{"state_dict": ...}``) but without the checkpoint's metadata."""
    import torch

    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"state_dict": state}, buf)
    return buf.getbuffer().nbytes


def artifact_size(artifact: Artifact) -> dict[str, Any]:
    """What ``size_bytes`` is, measured the same way for every artifact of a kind.

    ``size_kind`` says which: ``state_dict`` for a torch model held as a module (the baseline,
    a distilled or pruned model: its weights as a checkpoint stores them, so a model with half
    the weights is half the size whatever its checkpoint's metadata), ``file`` for a deployed
    file (.onnx with its external data, .tflite, .pt2, TorchScript; OpenVINO's .xml with its
    .bin). ``file_bytes`` is
    the file on disk, metadata included, where there is one.
    """
    files = artifact.model_files()
    if artifact.path is not None and artifact.format == "onnx":
        files += [f for f in onnx_external_files(artifact.path) if f not in files]
    on_disk = files_size(files) if artifact.path else None
    graph_file = artifact.path is not None and artifact.path.suffix == ".pt2"
    if artifact.format == "torch" and artifact.module is not None and not graph_file:
        return {
            "size_bytes": state_dict_bytes(artifact.module),
            "size_kind": "state_dict",
            "file_bytes": on_disk,
        }
    return {"size_bytes": on_disk or 0, "size_kind": "file", "file_bytes": on_disk}


def count_macs(module, example: list) -> int | None:
    """Multiply-accumulates of one forward pass, from torch's flop counter (FLOPs / 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            module(*example)
    except Exception:  # scripted or exotic modules the counter cannot follow
        return None
    return int(counter.get_total_flops() // 2)
