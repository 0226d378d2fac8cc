"""The checkpoint format: a modelpress weights file (state dict + how to rebuild the model and
what it was trained for), loadable with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modelpress.core.rundir import write_bytes_atomic


def write_torch(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` of ``payload``, written atomically."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes_atomic(path, buf.getvalue())


def save_checkpoint(path: Path, model: nn.Module, metadata: dict[str, Any]) -> None:
    """A weights file that reloads by itself: state dict + what is needed to rebuild the model.

    Loadable with ``torch.load(weights_only=True)``; ``modelpress ... path.pt`` rebuilds it.
    """
    from modelpress.sources.models import CHECKPOINT_KEY

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_torch(path, {"state_dict": state, CHECKPOINT_KEY: _plain(metadata)})


def _plain(obj: Any) -> Any:
    """Only plain types in checkpoint metadata, so weights_only loading accepts it."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)


def checkpoints_dir(out: Path) -> Path:
    """Where ``train_and_save`` keeps the per-epoch checkpoints of a training written to ``out``."""
    return out.parent / f"{out.stem}.checkpoints"


def checkpoint_metadata(ctx: Any, rebuild: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What a modelpress checkpoint records beside the weights: how to rebuild the model
    (``Artifact.rebuild``: source, kwargs, pruning structure) and what it was trained for."""
    from modelpress.core.inputs import InputSpec, format_input_shape

    return {
        "format": 1,
        **rebuild,
        "input_shape": format_input_shape([InputSpec(s.name, s.shape) for s in ctx.input_specs]),
        "task": ctx.task.name,
        "num_classes": ctx.data.num_classes,
        "class_names": ctx.data.class_names,
        **extra,
    }
